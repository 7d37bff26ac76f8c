"""End to end on real zoo runs: train a preset briefly, then `deepscope audit` its folder."""

from __future__ import annotations

import json
import time

import pytest


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    zoo = pytest.importorskip("zoo")
    folder = tmp_path_factory.mktemp("runs") / "mlp-digits"
    zoo.train(preset="mlp-digits", out=folder, epochs=3, progress=False)
    return folder


def test_audit_of_a_zoo_run_fills_every_section_from_the_test_split(digits_run, tmp_path):
    from deepscope.cli import main
    out = tmp_path / "report.json"
    t0 = time.perf_counter()
    code = main(["audit", str(digits_run), "--out", str(out), "--samples", "4", "-q"])
    seconds = time.perf_counter() - t0
    d = json.loads(out.read_text())
    assert code in (0, 1) and seconds < 60
    s = d["sections"]
    assert s["training"]["available"] and s["performance"]["available"]
    assert s["explanations"]["available"] and len(s["explanations"]["samples"]) == 4
    assert s["card"]["card"]["name"] == "mlp" and s["card"]["seed"] == 0
    import zoo
    run = zoo.load_run(digits_run)
    assert s["performance"]["n"] == len(run.dataset.test)
    assert s["performance"]["accuracy"] == pytest.approx(run.metrics["test_accuracy"], abs=1e-6)
    checks = {f["check"] for f in d["findings"]}
    assert {"overfitting", "vanishing-gradients", "non-finite", "spectral"} <= checks


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["rnn-vowels", "transformer-rt", "cnn-mnist"])
def test_audit_of_every_modality_renders_html(preset, tmp_path):
    import zoo
    from deepscope.cli import main
    folder = tmp_path / preset
    zoo.train(preset=preset, out=folder, epochs=1, progress=False)
    out = tmp_path / "report.html"
    assert main(["audit", str(folder), "--out", str(out), "-q"]) in (0, 1)
    html = out.read_text()
    assert html.count("Plotly.newPlot(") >= 8
    if preset == "transformer-rt":
        assert "deepscope-tokens" in html  # token highlighting of text samples
