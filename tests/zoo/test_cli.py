"""The deepscope command line: help, exit codes, one-line errors."""

import subprocess
import sys

import pytest

from zoo.cli import main


def test_help_exits_zero(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in ("train", "list", "show", "demo"):
        assert cmd in out


def test_list_presets(capsys):
    assert main(["list", "presets"]) == 0
    out = capsys.readouterr().out
    assert "cnn-overfit" in out and "expect overfitting" in out
    assert "cnn-mnist" in out and "healthy" in out


def test_train_then_show(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "mlp-digits", "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert (out / "model.safetensors").exists() and (out / "run.json").exists()
    assert main(["show", str(out)]) == 0
    assert "mlp-digits: test accuracy 0." in capsys.readouterr().out


@pytest.mark.parametrize("argv,needle", [
    (["train", "mlp-digitz"], "Unknown preset 'mlp-digitz'. Did you mean 'mlp-digits'"),
    (["show", "/nonexistent/run"], "does not exist"),
    (["train", "mlp-digits", "--epochs", "0"], "'epochs' parameter of TrainConfig must be an int >= 1"),
])
def test_bad_input_is_exit_2_with_one_line(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert err.count("\n") == 1


def test_console_entry_point_runs_as_module():
    proc = subprocess.run([sys.executable, "-m", "zoo.cli", "list", "models"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert {"cnn", "rnn", "transformer", "mlp"} <= set(proc.stdout.split())
