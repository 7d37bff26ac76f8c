"""``deepscope show RUN_DIR``: a run folder's one-line summary."""

from __future__ import annotations

import argparse
from pathlib import Path

from deepscope._output import summary

__all__ = ["NAME", "HELP", "add_arguments", "run"]

NAME = "show"
HELP = "print a run folder's summary"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``run_dir``."""
    parser.add_argument("run_dir", type=Path)


def run(args: argparse.Namespace) -> int:
    """Load ``args.run_dir`` and print its summary; return 0."""
    import zoo

    print(summary(zoo.load_run(args.run_dir)))
    return 0
