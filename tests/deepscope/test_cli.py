"""The deepscope command line: help, exit codes, one-line errors."""

import subprocess
import sys

import pytest

import zoo
from deepscope.cli import main


def test_help_exits_zero(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in ("train", "list", "show", "audit", "dashboard", "demo"):
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


def _deepscope(*argv: str) -> subprocess.CompletedProcess:
    """The ``deepscope`` executable, as ``python -m deepscope`` (the console script's target)."""
    return subprocess.run([sys.executable, "-m", "deepscope", *argv], capture_output=True,
                          text=True, timeout=120)


def test_python_m_deepscope_runs_the_command_line():
    proc = _deepscope("list", "models")
    assert proc.returncode == 0
    assert proc.stdout.split() == zoo.list_models()


def test_python_m_deepscope_bad_input_is_exit_2_with_one_line():
    proc = _deepscope("show", "/nonexistent/run")
    assert proc.returncode == 2
    assert proc.stderr.startswith("deepscope: error: Run folder '/nonexistent/run' does not exist.")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert capsys.readouterr().out.startswith("usage: deepscope ")


@pytest.mark.parametrize("argv", [["-q", "list", "models"], ["list", "models", "--quiet"]])
def test_quiet_is_accepted_before_and_after_the_command(argv, capsys):
    assert main(argv) == 0
    assert capsys.readouterr().out.split() == zoo.list_models()


def test_the_console_script_points_at_deepscope_cli_main():
    from pathlib import Path

    import tomllib
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    with open(pyproject, "rb") as fh:
        scripts = tomllib.load(fh)["project"]["scripts"]
    assert scripts == {"deepscope": "deepscope.cli:main"}
