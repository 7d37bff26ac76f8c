"""`deepscope dashboard`: the command line it builds and the settings it ships."""

from __future__ import annotations

import argparse

import pytest
import tomllib

import explain
from deepscope.commands import dashboard as cmd


def _flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_command_serves_the_app_on_loopback_with_the_shipped_hardening():
    # Act
    command = cmd.streamlit_command(8765)
    # Assert
    assert command[1:4] == ["-m", "streamlit", "run"]
    assert command[4] == str(cmd.APP_PATH)
    assert _flag(command, "--server.address") == "127.0.0.1"
    assert _flag(command, "--server.port") == "8765"
    assert _flag(command, "--server.enableXsrfProtection") == "true"
    assert _flag(command, "--server.maxUploadSize") == "50"
    assert _flag(command, "--server.headless") == "true"
    assert _flag(command, "--client.showErrorDetails") == "none"
    assert _flag(command, "--browser.gatherUsageStats") == "false"


def test_loopback_cannot_be_overridden_by_the_config_file(tmp_path):
    # Arrange: a config that asks for every interface
    bad = tmp_path / "config.toml"
    bad.write_text('[server]\naddress = "0.0.0.0"\n')
    # Act
    command = cmd.streamlit_command(8501, config_path=bad)
    # Assert
    assert _flag(command, "--server.address") == "127.0.0.1"


def test_config_ships_inside_the_package():
    with open(cmd.CONFIG_PATH, "rb") as fh:
        config = tomllib.load(fh)
    assert config["server"]["enableXsrfProtection"] is True
    assert config["server"]["maxUploadSize"] == 50
    assert config["client"]["showErrorDetails"] == "none"


@pytest.mark.parametrize("port", [80, 70000, "8501"])
def test_bad_port_is_a_clear_error(port):
    with pytest.raises((explain.InvalidInputError, explain.InvalidTypeError),
                       match="'port' parameter of deepscope dashboard must be an int >= 1024"):
        cmd.streamlit_command(port)


def test_arguments_and_defaults(monkeypatch):
    monkeypatch.setenv("DEEPSCOPE_RUNS", "/srv/runs")
    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    args = parser.parse_args([])
    assert (args.runs, args.port, args.no_browser) == ("/srv/runs", 8501, False)
    args = parser.parse_args(["--runs", "r", "--port", "9000", "--no-browser"])
    assert (args.runs, args.port, args.no_browser) == ("r", 9000, True)
    assert cmd.NAME == "dashboard" and cmd.HELP


def test_runs_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "runs"
    path.write_text("not a folder")
    args = argparse.Namespace(runs=str(path), port=8501, no_browser=True)
    with pytest.raises(explain.InvalidInputError, match="must be a folder of run folders"):
        cmd.run(args)


def test_the_app_is_found_through_the_imported_package():
    from pathlib import Path

    import dashboard
    # Assert: next to dashboard/__init__.py, wherever the package was imported from
    assert cmd.APP_PATH == Path(dashboard.__file__).resolve().parent / "app.py"
    assert cmd.APP_PATH.is_file() and cmd.CONFIG_PATH.is_file()


def test_the_child_gets_the_runs_folder_and_no_pythonpath_edit(tmp_path, monkeypatch):
    # Arrange: record the child's command and environment instead of starting Streamlit
    seen = {}
    monkeypatch.setattr(cmd, "_serve", lambda command, env: seen.update(cmd=command, env=env) or 0)
    monkeypatch.setenv("PYTHONPATH", "/somewhere")
    args = argparse.Namespace(runs=str(tmp_path), port=8502, no_browser=True, quiet=True)
    # Act
    code = cmd.run(args)
    # Assert
    assert code == 0
    assert seen["env"]["DEEPSCOPE_RUNS"] == str(tmp_path.resolve())
    assert seen["env"]["PYTHONPATH"] == "/somewhere"
    assert seen["cmd"][4] == str(cmd.APP_PATH)


def test_browser_console_passes_only_the_upstream_page_probes():
    from tests.dashboard.helpers import BrowserConsole

    class Page:  # the three Playwright events the watcher listens to
        def __init__(self):
            self.handlers = {}

        def on(self, event, fn):
            self.handlers[event] = fn

    class Msg:
        def __init__(self, type_, text):
            self.type, self.text = type_, text

    class Resp:
        def __init__(self, status, url):
            self.status, self.url = status, url

    page = Page()
    console = BrowserConsole(page)
    page.handlers["response"](Resp(404, "http://127.0.0.1:1/training/_stcore/health"))
    page.handlers["console"](Msg("error", "Failed to load resource: 404 (Not Found)"))
    page.handlers["response"](Resp(200, "http://127.0.0.1:1/_stcore/health"))
    page.handlers["console"](Msg("warning", "a warning is not an error"))
    assert console.unexpected() == []
    page.handlers["response"](Resp(500, "http://127.0.0.1:1/_stcore/stream"))
    page.handlers["pageerror"]("TypeError: x is undefined")
    assert console.unexpected() == ["page error TypeError: x is undefined",
                                    "HTTP 500 http://127.0.0.1:1/_stcore/stream"]
