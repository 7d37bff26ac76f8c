"""The ``deepscope`` commands, one module each.

Every public module here is a command: it defines ``NAME`` (the word typed), ``HELP`` (one line
for ``deepscope --help``), ``add_arguments(parser)`` and ``run(args) -> int`` (the exit code).
It may define ``DESCRIPTION`` for its own ``--help``. :func:`deepscope.cli.build_parser` picks a
new file up without further edits, and ``tests/deepscope/test_commands.py`` checks every one.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

__all__ = ["list_commands", "get_command"]


def list_commands() -> dict[str, ModuleType]:
    """``{NAME: module}`` for every command module, sorted by name."""
    mods = {}
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            mod = importlib.import_module(f"{__name__}.{info.name}")
            mods[mod.NAME] = mod
    return dict(sorted(mods.items()))


def get_command(name: str) -> ModuleType:
    """The module of command ``name`` (an unknown name lists the closest valid ones)."""
    commands = list_commands()
    if name not in commands:
        from explain._validation import unknown_name
        raise unknown_name("deepscope command", name, commands)
    return commands[name]
