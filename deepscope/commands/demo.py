"""``deepscope demo``: train the default presets if missing, audit them, open the dashboard."""

from __future__ import annotations

import argparse
from pathlib import Path

from deepscope._output import say, summary
from deepscope.commands import audit, dashboard
from explain.errors import DeepscopeError

__all__ = ["NAME", "HELP", "add_arguments", "run"]

NAME = "demo"
HELP = "train the default presets if missing, audit them, open the dashboard"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--runs``, ``--presets``, ``--no-dashboard`` and ``--port``."""
    parser.add_argument("--runs", type=Path, default=Path("runs"),
                        help="runs folder (default: runs)")
    parser.add_argument("--presets", nargs="+", help="presets to train (default: the zoo defaults)")
    parser.add_argument("--no-dashboard", action="store_true", help="do not start the dashboard")
    parser.add_argument("--port", type=int, default=8501)


def _arguments(command, argv: list[str], quiet: bool) -> argparse.Namespace:
    """``argv`` parsed by ``command``'s own parser: its defaults for everything not given."""
    parser = argparse.ArgumentParser(prog=f"deepscope {command.NAME}")
    command.add_arguments(parser)
    return argparse.Namespace(**vars(parser.parse_args(argv)), quiet=quiet)


def _trained(args: argparse.Namespace, name: str, folder: Path):
    """The complete run in ``folder``; an unfinished one is resumed, a missing or unreadable one
    trained (replacing the unreadable one only once the new run is saved)."""
    import zoo
    from zoo.writer import existing_run

    found = None
    try:
        found = zoo.load_run(folder)
    except (FileNotFoundError, DeepscopeError):
        pass
    if found is not None and found.metrics.get("complete", True):
        say(args, f"[demo] {name}: found {folder}")
        return found
    there = existing_run(folder)
    if found is not None and there is not None and there.resumable:
        say(args, f"[demo] {name}: resuming {folder} from epoch {there.epoch}")
        return zoo.train(preset=name, out=folder, resume=True, progress=not args.quiet)
    say(args, f"[demo] {name}: training -> {folder}")
    return zoo.train(preset=name, out=folder, overwrite=there is not None,
                     progress=not args.quiet)


def run(args: argparse.Namespace) -> int:
    """Train, audit (``RUN/report.html``), then serve the dashboard unless ``--no-dashboard``."""
    from zoo.presets import DEFAULT_PRESETS

    for name in args.presets or list(DEFAULT_PRESETS):
        folder = args.runs / name
        say(args, "  " + summary(_trained(args, name, folder)))
        audit.run(_arguments(audit, [str(folder), "--out", str(folder / "report.html")],
                             args.quiet))  # prints the verdict and where the report went
    if args.no_dashboard:
        return 0
    return dashboard.run(_arguments(dashboard, ["--runs", str(args.runs), "--port",
                                                str(args.port)], args.quiet))
