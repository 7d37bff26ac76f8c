"""``deepscope list [models|datasets|presets]``: what the zoo holds."""

from __future__ import annotations

import argparse

__all__ = ["NAME", "HELP", "add_arguments", "run"]

NAME = "list"
HELP = "list models, datasets or presets"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``what`` (models, datasets or presets; default presets)."""
    parser.add_argument("what", choices=["models", "datasets", "presets"], nargs="?",
                        default="presets")


def run(args: argparse.Namespace) -> int:
    """Print one name per line (presets with model, dataset and what to expect); return 0."""
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
