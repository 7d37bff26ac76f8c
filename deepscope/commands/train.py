"""``deepscope train PRESET``: train a zoo preset into a run folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from deepscope._output import say, summary

__all__ = ["NAME", "HELP", "DESCRIPTION", "add_arguments", "run"]

NAME = "train"
HELP = "train a zoo preset into a run folder"
DESCRIPTION = ("Train a zoo preset (see `deepscope list presets`) and write its run folder "
               "(model.safetensors + run.json).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``preset``, ``--out``, ``--epochs``, ``--device``, ``--seed`` and ``--resume``."""
    parser.add_argument("preset", help="preset name, e.g. cnn-mnist")
    parser.add_argument("--out", type=Path, help="run folder (default: runs/PRESET)")
    parser.add_argument("--epochs", type=int, help="override the preset's number of epochs")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    parser.add_argument("--seed", type=int, help="override the preset's seed")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")


def run(args: argparse.Namespace) -> int:
    """Train ``args.preset`` into ``args.out`` and print the run's summary; return 0."""
    import zoo

    out = args.out or Path("runs") / args.preset
    config: dict[str, Any] = {"device": args.device}
    if args.epochs is not None:
        config["epochs"] = args.epochs
    if args.seed is not None:
        config["seed"] = args.seed
    trained = zoo.train(preset=args.preset, out=out, resume=args.resume,
                        progress=not args.quiet, **config)
    say(args, summary(trained))
    return 0
