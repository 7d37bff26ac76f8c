"""``--nproc N`` for the commands that scale out (``train``, ``audit``): relaunch under torchrun.

``deepscope COMMAND ... --nproc N`` runs
``python -m torch.distributed.run --standalone --nproc_per_node N -m deepscope COMMAND ...``
(the same arguments, without ``--nproc``) and returns rank 0's exit code. A command started by
``torchrun`` directly (``WORLD_SIZE`` in the environment) joins the process group itself with
:class:`Session`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from explain._core import distributed as dist

__all__ = ["add_nproc_argument", "relaunch", "Session", "EXIT_FILE"]

#: The environment variable naming the file where rank 0 leaves its exit code for
#: :func:`relaunch` (torchrun turns every non-zero exit into its own failure report).
EXIT_FILE = "DEEPSCOPE_EXIT_FILE"


def _nproc(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an int >= 1. Got {text!r} instead")
    return value


def add_nproc_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """Add ``--nproc N`` (default 1: this process, no torchrun) to ``parser``."""
    parser.add_argument("--nproc", type=_nproc, default=1, metavar="N",
                        help=f"{what} with N processes under torchrun (gloo on CPU, NCCL on "
                             "CUDA; default: 1, this process)")


def relaunch(nproc: int, argv: Sequence[str]) -> int:
    """Run ``deepscope *argv`` on ``nproc`` processes under torchrun; rank 0's exit code."""
    with tempfile.TemporaryDirectory(prefix="deepscope-nproc-") as folder:
        exit_file = Path(folder, "exit")
        env = {**os.environ, EXIT_FILE: str(exit_file), "OMP_NUM_THREADS":
               os.environ.get("OMP_NUM_THREADS", "1")}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", "-m", "deepscope", *argv]
        done = subprocess.run(cmd, env=env, check=False)
        if exit_file.exists():
            return int(exit_file.read_text().strip() or 2)
        return done.returncode or 2


class Session:
    """Join torchrun's process group for one command (no-op when not under torchrun).

    ``Session.finish(code)`` is the command's exit code: under :func:`relaunch` rank 0 writes
    it to :data:`EXIT_FILE` and every rank exits 0.
    """

    def __init__(self, device: str | None = None) -> None:
        self.device = device
        self._owned = False

    def __enter__(self) -> Session:
        self._owned = dist.init_from_env(self.device)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._owned:
            dist.destroy()

    @staticmethod
    def finish(code: int) -> int:
        """``code``, or 0 after writing it for :func:`relaunch` (rank 0 only)."""
        target = os.environ.get(EXIT_FILE)
        if target is None or "WORLD_SIZE" not in os.environ:
            return code
        if os.environ.get("RANK", "0") == "0":
            Path(target).write_text(str(code))
        return 0
