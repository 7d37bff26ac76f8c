"""The ``deepscope`` command line: ``deepscope [--quiet] COMMAND ...``.

One module per command in :mod:`deepscope.commands` (see there for the four names a command
module defines). Exit codes: 0 success, 1 findings at or above ``--fail-on`` (``audit``),
2 bad input or usage, reported in one line on stderr without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from deepscope.commands import list_commands
from explain.errors import DeepscopeError

__all__ = ["main", "build_parser"]

_QUIET_HELP = "print only errors"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: global options, then one sub-parser per command module."""
    from explain import __version__

    parser = argparse.ArgumentParser(
        prog="deepscope",
        description="Interpretability and diagnostics for PyTorch models: train zoo models, "
                    "audit runs, explore them in a dashboard.")
    parser.add_argument("--version", action="version", version=f"deepscope {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help=_QUIET_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, mod in list_commands().items():
        p = sub.add_parser(name, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        # --quiet after the command too; SUPPRESS keeps a --quiet given before it
        p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                       help=_QUIET_HELP)
        p.set_defaults(func=mod.run)
    return parser


def _error(msg: str) -> int:
    print(f"deepscope: error: {msg}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``deepscope`` with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    Examples
    --------
    >>> main(["list", "models"])  # doctest: +ELLIPSIS
    cnn
    ...
    transformer
    0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 0 for --help and --version, 2 for bad usage
        return int(exc.code or 0)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except DeepscopeError as exc:
        return _error(str(exc))
    except KeyboardInterrupt:
        return _error("interrupted")
