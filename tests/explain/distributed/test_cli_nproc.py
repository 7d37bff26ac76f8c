"""``deepscope audit RUN --nproc N``: relaunched under torchrun, rank 0 writes the same report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deepscope.cli import build_parser
from deepscope.commands import audit as audit_cmd
from tests.explain.distributed._compare import differences

_LATENCY = {"latency_ms", "fit_seconds", "latency_ratio"}


def _timed(diff: str) -> bool:
    """A difference in a wall-clock measurement of the shallow-baseline stage."""
    path = diff.split(":")[0].split("/")
    return any(k in path for k in _LATENCY) or (path[-1] == "summary"
                                                and "latency per sample" in diff)


def test_audit_argv_round_trips_without_nproc() -> None:
    # Arrange
    args = build_parser().parse_args(["audit", "runs/x", "--out", "r.json", "--samples", "3",
                                      "--fail-on", "warn", "--nproc", "2", "-q"])
    # Act
    argv = audit_cmd._argv(args)
    again = build_parser().parse_args(argv)
    # Assert
    assert argv == ["audit", "runs/x", "--fail-on", "warn", "--samples", "3", "--out", "r.json",
                    "--quiet"]
    assert (again.nproc, again.samples, again.fail_on, str(again.out), again.quiet) == \
        (1, 3, "warn", "r.json", True)


def test_nproc_below_one_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    # Arrange / Act
    from deepscope.cli import main
    code = main(["audit", "runs/x", "--nproc", "0"])
    # Assert
    assert code == 2
    assert "argument --nproc: must be an int >= 1. Got '0' instead" in capsys.readouterr().err


def _deepscope(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "deepscope", *argv], env=env, text=True,
                          capture_output=True, check=False, timeout=600)


@pytest.mark.slow
def test_audit_nproc_2_writes_the_single_process_report(tmp_path: Path) -> None:
    # Arrange
    run_dir = tmp_path / "run"
    assert _deepscope("-q", "train", "mlp-digits", "--epochs", "1", "--out",
                      str(run_dir)).returncode == 0
    one = _deepscope("audit", str(run_dir), "--samples", "3", "--out", str(tmp_path / "1.json"),
                     "-q")
    # Act
    two = _deepscope("audit", str(run_dir), "--samples", "3", "--out", str(tmp_path / "2.json"),
                     "--nproc", "2", "-q")
    # Assert
    assert (one.returncode, two.returncode) == (0, 0), two.stderr[-2000:]
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in (1, 2))
    # the shallow-baseline latencies are wall-clock measurements, different in any two runs
    assert [d for d in differences(a, b) if not _timed(d)] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.json", "2.json", "run"]
