"""The ``deepscope`` command line.

Built-in subcommands: ``train``, ``list``, ``show``, ``demo``. Every module in ``zoo/commands/``
adds one more (``NAME``, ``HELP``, ``add_arguments(parser)``, ``run(args) -> int``).

Exit codes: 0 success, 1 findings at or above ``--fail-on`` (audit), 2 bad input.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path

from explain.errors import DeepscopeError

__all__ = ["main"]


def _err(msg: str) -> int:
    print(f"deepscope: error: {msg}", file=sys.stderr)
    return 2


def _say(args: argparse.Namespace, msg: str) -> None:
    if not getattr(args, "quiet", False):
        print(msg)


# ----------------------------------------------------------------------------- train
def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a zoo preset into a run folder",
                       description="Train a zoo preset (see `deepscope list presets`) and write its "
                                   "run folder (model.safetensors + run.json).")
    p.add_argument("preset", help="preset name, e.g. cnn-mnist")
    p.add_argument("--out", type=Path, help="run folder (default: runs/PRESET)")
    p.add_argument("--epochs", type=int, help="override the preset's number of epochs")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    p.add_argument("--seed", type=int, help="override the preset's seed")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    import zoo
    out = args.out or Path("runs") / args.preset
    cfg = {"device": args.device}
    if args.epochs is not None:
        cfg["epochs"] = args.epochs
    if args.seed is not None:
        cfg["seed"] = args.seed
    run = zoo.train(preset=args.preset, out=out, resume=args.resume,
                    progress=not args.quiet, **cfg)
    _say(args, _summary(run))
    return 0


def _summary(run) -> str:
    m = run.metrics
    acc = m.get("test_accuracy")
    secs = m.get("train_seconds")
    return (f"{run.preset or run.model_name}: test accuracy {acc:.4f} after {run.epoch} epochs "
            f"({secs:.1f} s on {m.get('device')}) -> {run.path}")


# ----------------------------------------------------------------------------- list / show
def _add_list(sub) -> None:
    p = sub.add_parser("list", help="list models, datasets or presets")
    p.add_argument("what", choices=["models", "datasets", "presets"], nargs="?", default="presets")
    p.set_defaults(func=_cmd_list)


def _cmd_list(args: argparse.Namespace) -> int:
    import zoo
    if args.what == "presets":
        for name in zoo.list_presets():
            p = zoo.get_preset(name)
            tag = "healthy" if p.healthy else "expect " + ", ".join(p.expected)
            print(f"{name:16s} {p.model:12s} {p.dataset:17s} [{tag}]")
    else:
        for name in (zoo.list_models() if args.what == "models" else zoo.list_datasets()):
            print(name)
    return 0


def _add_show(sub) -> None:
    p = sub.add_parser("show", help="print a run folder's summary")
    p.add_argument("run_dir", type=Path)
    p.set_defaults(func=_cmd_show)


def _cmd_show(args: argparse.Namespace) -> int:
    import zoo
    print(_summary(zoo.load_run(args.run_dir)))
    return 0


# ----------------------------------------------------------------------------- demo
def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="train the default presets if missing, audit them, open the "
                                    "dashboard")
    p.add_argument("--runs", type=Path, default=Path("runs"), help="runs folder (default: runs)")
    p.add_argument("--presets", nargs="+", help="presets to train (default: the zoo defaults)")
    p.add_argument("--no-dashboard", action="store_true", help="do not start the dashboard")
    p.add_argument("--port", type=int, default=8501)
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    import zoo
    from zoo.presets import DEFAULT_PRESETS
    presets = args.presets or list(DEFAULT_PRESETS)
    for name in presets:
        folder = args.runs / name
        try:
            run = zoo.load_run(folder)
            if not run.metrics.get("complete", True):
                raise FileNotFoundError
            _say(args, f"[demo] {name}: found {folder}")
        except (FileNotFoundError, DeepscopeError):
            _say(args, f"[demo] {name}: training -> {folder}")
            run = zoo.train(preset=name, out=folder, progress=not args.quiet)
        _say(args, "  " + _summary(run))
        audit = _command("audit")
        if audit is not None:
            report = folder / "report.html"
            ns = argparse.Namespace(run_dir=folder, out=report, fail_on=None, samples=None,
                                    quiet=args.quiet)
            _fill_defaults(audit, ns)
            audit.run(ns)  # prints the verdict and where the report went
    dash = _command("dashboard")
    if dash is not None and not args.no_dashboard:
        ns = argparse.Namespace(runs=args.runs, port=args.port, quiet=args.quiet)
        _fill_defaults(dash, ns)
        return dash.run(ns)
    return 0


def _fill_defaults(module, ns: argparse.Namespace) -> None:
    """Give ``ns`` every default of ``module``'s parser that the demo did not set."""
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    for action in parser._actions:
        if action.dest != "help" and getattr(ns, action.dest, None) is None:
            setattr(ns, action.dest, action.default)


# ----------------------------------------------------------------------------- plumbing
def _commands() -> dict[str, object]:
    import zoo.commands as pkg
    mods = {}
    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.name.startswith("_"):
            mod = importlib.import_module(f"zoo.commands.{info.name}")
            mods[mod.NAME] = mod
    return mods


def _command(name: str):
    return _commands().get(name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepscope",
        description="Interpretability and diagnostics for PyTorch models: train zoo models, "
                    "audit runs, explore them in a dashboard.")
    from explain import __version__
    parser.add_argument("--version", action="version", version=f"deepscope {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train(sub)
    _add_list(sub)
    _add_show(sub)
    _add_demo(sub)
    for name, mod in sorted(_commands().items()):
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(func=mod.run)
    for p in sub.choices.values():  # --quiet after the subcommand too
        if not any("--quiet" in a.option_strings for a in p._actions):
            p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                           help="print only errors")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 0 for --help, 2 for bad usage
        return int(exc.code or 0)
    if not hasattr(args, "quiet"):
        args.quiet = False
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except DeepscopeError as exc:
        return _err(str(exc))
    except KeyboardInterrupt:
        return _err("interrupted")


if __name__ == "__main__":
    sys.exit(main())
