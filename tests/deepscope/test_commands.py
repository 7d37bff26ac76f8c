"""Every module in deepscope/commands/ is a command of the same shape (conformance)."""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path

import pytest

import explain
from deepscope.cli import build_parser, main
from deepscope.commands import get_command, list_commands

COMMANDS = list_commands()


def test_the_six_commands_are_found():
    assert list(COMMANDS) == ["audit", "dashboard", "demo", "list", "show", "train"]


@pytest.mark.parametrize("name", COMMANDS)
def test_a_command_module_has_the_four_names(name):
    mod = COMMANDS[name]
    assert mod.NAME == name == Path(mod.__file__).stem
    assert isinstance(mod.HELP, str) and mod.HELP and "\n" not in mod.HELP
    assert list(inspect.signature(mod.add_arguments).parameters) == ["parser"]
    assert list(inspect.signature(mod.run).parameters) == ["args"]
    assert {"NAME", "HELP", "add_arguments", "run"} <= set(mod.__all__)


@pytest.mark.parametrize("name", COMMANDS)
def test_a_command_has_help_exit_0_and_accepts_quiet(name, capsys):
    assert main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: deepscope {name} ")
    assert "-q, --quiet" in out


@pytest.mark.parametrize("name", COMMANDS)
def test_a_command_is_listed_with_its_help_line(name):
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in sub._choices_actions}
    assert helps[name] == COMMANDS[name].HELP


def test_an_unknown_command_name_lists_the_closest():
    with pytest.raises(explain.UnknownNameError,
                       match=r"Unknown deepscope command 'audti'\. Did you mean 'audit', 'train'\?"):
        get_command("audti")
