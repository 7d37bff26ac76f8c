"""The cached library calls: typed results that agree with the library and the trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import explain
from dashboard import cache as C
from dashboard import runs as R
from explain.auditing import performance_summary
from tests.dashboard.helpers import RUN_ID


def test_predictions_match_the_model(app_env):
    # Act
    p = C.predictions(RUN_ID, R.stamp_of(RUN_ID))
    run = C.get_run(RUN_ID)
    # Assert: accuracy agrees with the trainer's test metric
    assert p.probs.shape == (len(p.y), run.card.num_classes)
    np.testing.assert_allclose(p.probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(p.pred, p.probs.argmax(axis=1))
    acc = float((p.pred == p.y).mean())
    assert acc == pytest.approx(run.metrics["test_accuracy"], abs=1e-6)


def test_confusion_matrix_is_the_librarys(app_env):
    # Arrange
    run = C.get_run(RUN_ID)
    x, y = run.dataset.test.tensors
    with torch.no_grad():
        expected = performance_summary(run.model(x), y.long(), list(run.card.class_names))
    # Act
    p = C.predictions(RUN_ID, R.stamp_of(RUN_ID))
    # Assert: the same counts, and they agree with the predictions
    assert p.confusion.tolist() == [list(row) for row in expected.confusion]
    assert int(p.confusion.trace()) == int((p.pred == p.y).sum())
    assert int(p.confusion[3].sum()) == int((p.y == 3).sum())


def test_findings_are_typed_and_worst_first(app_env):
    # Act
    found = C.findings(RUN_ID, R.stamp_of(RUN_ID))
    # Assert
    assert found and all(isinstance(f, explain.Finding) for f in found)
    assert all(isinstance(f.severity, explain.Severity) for f in found)
    ranks = [f.severity.rank for f in found]
    assert ranks == sorted(ranks, reverse=True)


def test_overview_grades_with_the_worst_finding(app_env):
    # Arrange
    found = C.findings(RUN_ID, R.stamp_of(RUN_ID))
    # Act
    row = C.overview(RUN_ID, R.stamp_of(RUN_ID))
    # Assert
    assert (row.run, row.model, row.data, row.preset, row.epochs) == (
        RUN_ID, "mlp", "digits", "mlp-digits", 2)
    assert row.health is found[0].severity
    bad = [f.check for f in found if f.severity >= explain.Severity.WARN]
    assert row.issues == (", ".join(bad) or "none")


def test_trust_is_a_quality_with_a_verdict(app_env):
    # Act
    quality = C.trust(RUN_ID, R.stamp_of(RUN_ID), 0, "saliency", None)
    # Assert
    assert isinstance(quality, explain.Quality)
    assert quality.method == "saliency" and isinstance(quality.verdict, explain.Verdict)
    assert set(quality.metrics) <= set(C.TRUST_METRICS)


def test_sample_out_of_range_names_the_valid_range(app_env):
    n = len(C.get_run(RUN_ID).dataset.test)
    with pytest.raises(explain.InvalidInputError,
                       match=rf"^The sample index must be in 0\.\.{n - 1}\. Got {n} instead\."):
        C.sample(RUN_ID, n)
