"""End to end on real zoo runs: train a preset briefly, then audit it with ``Run.audit`` (which
calls the public ``explain.audit``; ``deepscope audit RUN_DIR`` wraps the same call and is tested
with the command line)."""

from __future__ import annotations

import json

import pytest

from explain.auditing import Report
from explain.auditing.sections import (
    CardSection,
    ExplanationsSection,
    PerformanceSection,
    TrainingSection,
)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    zoo = pytest.importorskip("zoo")
    folder = tmp_path_factory.mktemp("runs") / "mlp-digits"
    zoo.train(preset="mlp-digits", out=folder, epochs=3, progress=False)
    return zoo.load_run(folder)


def test_audit_of_a_zoo_run_fills_every_section_from_the_test_split(digits_run, tmp_path):
    # Act
    report = digits_run.audit(samples=4)
    back = Report.from_dict(json.loads(report.save(tmp_path / "report.json").read_text()))
    # Assert
    assert back == report
    assert report.section(TrainingSection).available
    perf = report.section(PerformanceSection)
    assert perf.available and perf.n == len(digits_run.dataset.test)
    assert perf.accuracy == pytest.approx(digits_run.metrics["test_accuracy"], abs=1e-6)
    explained = report.section(ExplanationsSection)
    assert explained.available and len(explained.samples) == 4
    card = report.section(CardSection)
    assert card.card.name == "mlp" and card.seed == 0
    checks = {f.check for f in report.findings}
    assert {"overfitting", "vanishing-gradients", "non-finite", "spectral"} <= checks


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["rnn-vowels", "transformer-rt", "cnn-mnist"])
def test_audit_of_every_modality_renders_html(preset, tmp_path):
    import zoo
    folder = tmp_path / preset
    zoo.train(preset=preset, out=folder, epochs=1, progress=False)
    html = zoo.load_run(folder).audit().render("html")
    assert html.count("Plotly.newPlot(") >= 8
    if preset == "transformer-rt":
        assert "deepscope-tokens" in html  # token highlighting of text samples
