"""``deepscope train PRESET``: train a zoo preset into a run folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from deepscope._distributed import Session, add_nproc_argument, relaunch
from deepscope._output import say, summary
from explain._core import distributed as dist

__all__ = ["NAME", "HELP", "DESCRIPTION", "add_arguments", "run"]

NAME = "train"
HELP = "train a zoo preset into a run folder"
DESCRIPTION = ("Train a zoo preset (see `deepscope list presets`) and write its run folder "
               "(model.safetensors + run.json). Without --out it goes to a fresh folder: "
               "runs/PRESET, else runs/PRESET-2, ... A folder that already holds a run is "
               "refused unless --resume or --overwrite says what to do with it. With --nproc N "
               "(or under torchrun) it trains with DistributedDataParallel: the preset's batch "
               "size is per process, so one step sees batch_size x N samples (the global batch).")


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
    add_nproc_argument(parser, "train (DDP; global batch = the preset's batch x N)")


def _argv(args: argparse.Namespace, out: Path) -> list[str]:
    """``args`` as the command line of this command (for :func:`relaunch`), without --nproc;
    the run folder is chosen once, here, so every rank writes to the same one."""
    argv = ["train", args.preset, "--device", args.device, "--out", str(out)]
    for flag, value in (("--epochs", args.epochs), ("--seed", args.seed)):
        argv += [flag, str(value)] if value is not None else []
    argv += ["--resume"] if args.resume else []
    argv += ["--overwrite"] if args.overwrite else []
    return argv + (["--quiet"] if getattr(args, "quiet", False) else [])


def run(args: argparse.Namespace) -> int:
    """Train ``args.preset`` into ``args.out`` and print the run's summary; return 0.

    With ``--nproc N`` (N > 1) it relaunches itself on N processes under torchrun; under
    torchrun it joins the process group (gloo on CPU, NCCL on CUDA) and trains with DDP
    (:mod:`zoo.distributed`); rank 0 alone shows progress, prints and writes the run folder.
    """
    nproc = int(getattr(args, "nproc", 1) or 1)
    if nproc > 1:
        return relaunch(nproc, _argv(args, _out_folder(args)))
    with Session(None if args.device == "auto" else args.device) as session:
        return session.finish(_train(args))


def _out_folder(args: argparse.Namespace) -> Path:
    """``--out``, else a fresh folder under runs/ (runs/PRESET with --resume/--overwrite)."""
    import zoo
    from zoo.writer import fresh_run_folder

    zoo.get_preset(args.preset)  # an unknown name fails before any folder is chosen
    if args.out is not None:
        return Path(args.out)
    root = Path("runs")
    return root / args.preset if args.resume or args.overwrite else fresh_run_folder(
        root, args.preset)


def _train(args: argparse.Namespace) -> int:
    import zoo

    out = _out_folder(args)
    config: dict[str, Any] = {"device": args.device}
    if args.epochs is not None:
        config["epochs"] = args.epochs
    if args.seed is not None:
        config["seed"] = args.seed
    trained = zoo.train(preset=args.preset, out=out, resume=args.resume,
                        overwrite=args.overwrite, progress=not args.quiet and dist.is_main(),
                        **config)
    if dist.is_main():
        say(args, summary(trained))
    return 0
