"""`deepscope demo`: trains what is missing, audits every run, then serves the dashboard."""

from __future__ import annotations

import argparse

import pytest

import zoo
from deepscope.cli import main
from deepscope.commands import audit, dashboard


@pytest.fixture
def calls(monkeypatch):
    """The audit and dashboard commands, recorded instead of run."""
    seen: dict[str, list[argparse.Namespace]] = {"audit": [], "dashboard": []}
    monkeypatch.setattr(audit, "run", lambda args: seen["audit"].append(args) or 0)
    monkeypatch.setattr(dashboard, "run", lambda args: seen["dashboard"].append(args) or 0)
    return seen


def test_demo_finds_a_trained_run_audits_it_and_opens_the_dashboard(tmp_path, calls, capsys):
    # Arrange
    runs = tmp_path / "runs"
    zoo.train(preset="mlp-digits", out=runs / "mlp-digits", epochs=1, progress=False,
              monitor=False)
    # Act
    code = main(["demo", "--runs", str(runs), "--presets", "mlp-digits", "--port", "8600"])
    # Assert
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith(f"[demo] mlp-digits: found {runs / 'mlp-digits'}\n  mlp-digits: "
                          "test accuracy ")
    (a,) = calls["audit"]
    assert (a.run_dir, a.out) == (runs / "mlp-digits", runs / "mlp-digits" / "report.html")
    assert (a.fail_on, a.samples, a.quiet) == ("fail", 8, False)
    (d,) = calls["dashboard"]
    assert (d.runs, d.port, d.no_browser, d.quiet) == (str(runs), 8600, False, False)


def test_demo_trains_a_missing_run_and_can_skip_the_dashboard(tmp_path, calls, capsys):
    # Act
    code = main(["-q", "demo", "--runs", str(tmp_path), "--presets", "mlp-digits",
                 "--no-dashboard"])
    # Assert
    assert code == 0 and capsys.readouterr().out == ""
    run = zoo.load_run(tmp_path / "mlp-digits")
    assert run.metrics["complete"] is True and run.epoch == zoo.get_preset("mlp-digits").config["epochs"]
    assert [a.quiet for a in calls["audit"]] == [True] and calls["dashboard"] == []
