"""A zoo Run audits itself through the public explain.audit, from its own typed fields."""

from __future__ import annotations

import dataclasses

import pytest

import zoo


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs") / "mlp-digits"
    zoo.train(preset="mlp-digits", out=folder, epochs=1, progress=False)
    return zoo.load_run(folder)


def test_run_audit_uses_the_test_split_and_records_the_run(run):
    # Act
    report = run.audit(samples=0, checks=["non-finite"])
    # Assert
    d = report.to_dict()
    assert d["title"] == "Audit of mlp-digits (digits)"
    assert d["sections"]["performance"]["n"] == len(run.dataset.test) == 180
    card = d["sections"]["card"]
    assert card["data"]["sizes"] == {"train": 1437, "val": 180, "test": 180}
    assert card["data"]["name"] == "digits" and card["data"]["split"] == "test"
    assert card["seed"] == 0 and card["config"]["epochs"] == 1
    assert card["extra"]["run_path"] == str(run.path)
    assert card["extra"]["metrics"]["test_accuracy"] == pytest.approx(run.metrics["test_accuracy"])
    assert card["extra"]["trained_with"] == run.versions
    assert [f.check for f in report.findings] == ["non-finite"]


def test_options_reach_explain_audit(run):
    stages = []
    report = run.audit(samples=0, checks=["non-finite"], title="Mine",
                       progress=lambda stage, done, total: stages.append(stage))
    assert report.title == "Mine"
    assert stages == ["predict", "checks", "performance", "calibration", "baseline", "robustness",
                      "shift", "explanations", "card", "done"]


def test_a_run_on_data_that_cannot_be_reloaded_is_audited_without_data(run):
    # Arrange: the same run, as if trained on arrays the user passed in
    orphan = dataclasses.replace(run, dataset_name=None, _dataset=None)
    # Act
    report = orphan.audit(samples=0, checks=["non-finite"])
    # Assert
    perf = report.to_dict()["sections"]["performance"]
    assert perf["available"] is False and perf["reason"].startswith("No labelled data was given.")
    assert report.title == "Audit of mlp-digits (None)"
