"""``zoo.learning_curve``: retrain a run's recipe on fractions of its data, fit a power law."""

from __future__ import annotations

import pytest

import zoo
from explain.errors import InvalidInputError
from zoo.learning import HELPS, LearningCurve, fit_power_law


def test_power_law_fit_predicts_the_gain_of_doubling():
    # Arrange: points on acc = 0.95 - 2 n^-0.5
    pts = [(n, 0.95 - 2 * n ** -0.5) for n in (100, 200, 400, 800)]
    # Act
    params, (gain, lo, hi) = fit_power_law(pts)
    # Assert
    assert params == pytest.approx((0.95, 2.0, 0.5), rel=1e-3)
    expected = (0.95 - 2 * 1600 ** -0.5) - (0.95 - 2 * 800 ** -0.5)
    assert gain == pytest.approx(expected, rel=1e-2) and lo <= gain <= hi


def test_summary_says_whether_doubling_helps():
    flat = LearningCurve(((500, 0.9), (1000, 0.91)), (0.92, 1.0, 0.5), 0.004, 0.001, 0.008)
    steep = LearningCurve(((500, 0.8), (1000, 0.85)), (0.95, 5.0, 0.5), 0.03, 0.021, 0.04)
    assert flat.summary == ("Doubling the data is not predicted to help: validation accuracy "
                            "0.910 with 1000 samples, predicted 0.914 with 2000 (gain +0.004, "
                            "90% interval +0.001 to +0.008).")
    assert steep.summary.startswith("Doubling the data would help: ") and HELPS == 0.02


def test_learning_curve_retrains_on_fractions_and_feeds_the_audit():
    run = zoo.train(preset="mlp-digits", epochs=2, progress=False, monitor=False)
    seen = []
    curve = zoo.learning_curve(run, fractions=(0.25, 0.5, 1.0),
                               progress=lambda done, total: seen.append((done, total)))
    assert [n for n, _ in curve.points] == [359, 718, 1437]
    assert all(0.0 <= acc <= 1.0 for _, acc in curve.points)
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    report = run.audit(samples=0, checks=["data-sufficiency"], learning_curve=curve)
    assert [f.check for f in report.checked] == ["data-sufficiency"]
    assert "the power law fitted to the learning curve predicts" in report.checked[0].summary
    assert report.to_dict()["sections"]["data_sufficiency"]["prediction"] == curve.summary


def test_learning_curve_needs_three_increasing_fractions():
    run = zoo.train(preset="mlp-digits", epochs=1, progress=False, monitor=False)
    with pytest.raises(InvalidInputError, match="3 or more strictly increasing"):
        zoo.learning_curve(run, fractions=(0.5, 1.0))
