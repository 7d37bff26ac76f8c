"""zoo's side of the data-randomization test: the permuted-label twin and Run.audit(data_sanity=True)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import zoo
from explain.auditing.sections import ExplanationsSection
from explain.errors import InvalidInputError
from explain.report.markdown import render_markdown
from zoo.learning import permuted_label_model


@pytest.fixture(scope="module")
def run():
    return zoo.train(preset="mlp-digits", epochs=4, progress=False, monitor=False)


def _val_accuracy(model, run):
    x, y = run.dataset.val.tensors
    with torch.no_grad():
        return float((model(x).argmax(1) == y).double().mean())


def test_the_twin_learns_nothing_that_transfers_and_repeats_for_a_seed(run):
    twin = permuted_label_model(run, epochs=2)
    again = permuted_label_model(run, epochs=2)

    assert type(twin) is type(run.model) and not twin.training
    assert _val_accuracy(run.model, run) > 0.8
    assert _val_accuracy(twin, run) < 0.25          # 10 classes: chance is 0.1
    assert all(torch.equal(a, b) for a, b in zip(twin.state_dict().values(),
                                                  again.state_dict().values()))


def test_a_run_without_reloadable_data_gets_a_typed_error(run):
    orphan = dataclasses.replace(run, dataset_name=None, _dataset=None)

    with pytest.raises(InvalidInputError, match="needs a run whose data deepscope can reload"):
        permuted_label_model(orphan)


def test_run_audit_shows_data_next_to_model_randomization_and_times_it(run):
    report = run.audit(samples=3, checks=["non-finite"], data_sanity=True)

    sec = report.section(ExplanationsSection)
    rows = sec.sanity_rows()
    assert [r.method for r in rows] == ["integrated_gradients", "saliency"]
    for m, r in zip(sec.methods, rows):
        assert m.quality.metrics[-1] == "data_sanity"
        assert r.data_correlation == m.quality.medians["data_sanity"]
        assert r.data_passed is (r.data_correlation <= 0.5) and r.model_passed is not None
        assert "with the model trained on permuted labels" in m.quality.summary
        assert m.quality.timings["data_sanity"] >= 0
    assert report.timings["data_sanity_training"] > 0
    md = render_markdown(report)
    assert ("Sanity checks (Adebayo et al. 2018; median rank correlation with the original map, "
            "low passes):") in md
    assert "| method | randomized weights | permuted labels |" in md


def test_run_audit_without_data_sanity_has_no_sanity_table(run):
    report = run.audit(samples=2, checks=["non-finite"])

    sec = report.section(ExplanationsSection)
    assert sec.sanity_rows() == ()
    assert "data_sanity" not in sec.methods[0].quality.metrics
    assert "data_sanity_training" not in report.timings
    assert "permuted labels" not in render_markdown(report)
