"""What several commands print: a run's one-line summary, and messages that ``--quiet`` hides."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zoo.run import Run

__all__ = ["say", "summary"]


def say(args: argparse.Namespace, msg: str) -> None:
    """Print ``msg`` unless the command was given ``--quiet``."""
    if not getattr(args, "quiet", False):
        print(msg)


def summary(run: Run) -> str:
    """``"mlp-digits: test accuracy 0.9611 after 15 epochs (1.2 s on cpu) -> runs/mlp-digits"``."""
    m = run.metrics
    acc = m.get("test_accuracy")
    secs = m.get("train_seconds")
    return (f"{run.preset or run.model_name}: test accuracy {acc:.4f} after {run.epoch} epochs "
            f"({secs:.1f} s on {m.get('device')}) -> {run.path}")
