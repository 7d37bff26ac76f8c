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
               "(model.safetensors + run.json). Without --out it goes to a fresh folder: "
               "runs/PRESET, else runs/PRESET-2, ... A folder that already holds a run is "
               "refused unless --resume or --overwrite says what to do with it.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``preset``, ``--out``, ``--epochs``, ``--device``, ``--seed``, ``--resume`` and
    ``--overwrite``."""
    parser.add_argument("preset", help="preset name, e.g. cnn-mnist")
    parser.add_argument("--out", type=Path,
                        help="run folder (default: a fresh runs/PRESET, runs/PRESET-2, ...; "
                             "runs/PRESET with --resume or --overwrite)")
    parser.add_argument("--epochs", type=int, help="override the preset's number of epochs")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    parser.add_argument("--seed", type=int, help="override the preset's seed")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue the unfinished run in --out")
    mode.add_argument("--overwrite", action="store_true",
                      help="replace the run in --out (kept until the new one is saved)")


def run(args: argparse.Namespace) -> int:
    """Train ``args.preset`` into ``args.out`` and print the run's summary; return 0."""
    import zoo
    from zoo.writer import fresh_run_folder

    zoo.get_preset(args.preset)  # an unknown name fails before any folder is chosen
    out = args.out
    if out is None:
        root = Path("runs")
        out = root / args.preset if args.resume or args.overwrite else fresh_run_folder(
            root, args.preset)
    config: dict[str, Any] = {"device": args.device}
    if args.epochs is not None:
        config["epochs"] = args.epochs
    if args.seed is not None:
        config["seed"] = args.seed
    trained = zoo.train(preset=args.preset, out=out, resume=args.resume,
                        overwrite=args.overwrite, progress=not args.quiet, **config)
    say(args, summary(trained))
    return 0
