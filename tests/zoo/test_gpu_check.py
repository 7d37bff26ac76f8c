"""benchmarks/gpu_check.py without a GPU: one clear line, exit status 0, at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_gpu_check_without_cuda_says_so_and_exits_0() -> None:
    # Arrange
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    # Act
    done = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True,
                          check=False, timeout=120)
    # Assert
    assert done.returncode == 0
    assert done.stdout == ("gpu_check: no CUDA device here (torch.cuda.is_available() is False); "
                           "nothing to check.\n")
