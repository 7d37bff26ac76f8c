"""``deepscope dashboard``: start the Streamlit dashboard on 127.0.0.1.

The server settings ship inside the package (``dashboard/config.toml``) and are passed as
command-line flags, so a user's ``~/.streamlit/config.toml`` cannot weaken them (loopback only,
XSRF protection on, 50 MB uploads, no error details in the browser, no usage statistics).
The runs folder reaches the app through the ``DEEPSCOPE_RUNS`` environment variable.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import webbrowser
from pathlib import Path
from typing import Any

import dashboard
from explain._validation import check_int
from explain.errors import InvalidInputError

__all__ = ["NAME", "HELP", "add_arguments", "run", "streamlit_command", "APP_PATH", "CONFIG_PATH"]

NAME = "dashboard"
HELP = "open the Streamlit dashboard on the runs folder (bound to 127.0.0.1)"

_PACKAGE_DIR = Path(dashboard.__file__).resolve().parent  # the installed app, wherever it is
APP_PATH = _PACKAGE_DIR / "app.py"
CONFIG_PATH = _PACKAGE_DIR / "config.toml"
RUNS_ENV = "DEEPSCOPE_RUNS"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--runs``, ``--port`` and ``--no-browser`` to ``parser``."""
    parser.add_argument("--runs", default=os.environ.get(RUNS_ENV, "runs"),
                        help="folder of run folders to show (default: $DEEPSCOPE_RUNS or ./runs)")
    parser.add_argument("--port", type=int, default=8501, help="local port (default: 8501)")
    parser.add_argument("--no-browser", action="store_true",
                        help="do not open a browser tab; just serve")


def _flags(config: dict[str, Any]) -> list[str]:
    """``{"server": {"port": 1}}`` -> ``["--server.port", "1"]`` (booleans as true/false)."""
    flags: list[str] = []
    for section, values in config.items():
        for key, value in values.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            flags += [f"--{section}.{key}", text]
    return flags


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib  # Python >= 3.11
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except ImportError:  # pragma: no cover - Python 3.10: Streamlit depends on `toml`
        import toml
        return toml.load(path)


def streamlit_command(port: int, *, config_path: Path = CONFIG_PATH) -> list[str]:
    """The ``python -m streamlit run`` command line with the shipped settings as flags.

    Parameters
    ----------
    port : the local port to serve on (1024..65535).
    config_path : the TOML file of settings (default: the one shipped in ``dashboard/``).

    Returns
    -------
    list of str, ready for :func:`subprocess.run`.

    Examples
    --------
    >>> cmd = streamlit_command(8765)
    >>> cmd[cmd.index("--server.address") + 1], cmd[cmd.index("--server.port") + 1]
    ('127.0.0.1', '8765')
    """
    port = check_int(port, "port", owner="deepscope dashboard", min=1024, max=65535)
    config = _read_toml(config_path)
    config.setdefault("server", {})
    config["server"]["address"] = "127.0.0.1"  # never from the file: loopback is not optional
    config["server"]["port"] = port
    return [sys.executable, "-m", "streamlit", "run", str(APP_PATH), *_flags(config)]


def _open_when_ready(url: str, port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                webbrowser.open(url)
                return
        except OSError:
            time.sleep(0.3)


def run(args: argparse.Namespace) -> int:
    """Serve the dashboard until interrupted; return Streamlit's exit status."""
    runs = Path(args.runs).expanduser().resolve()
    if runs.exists() and not runs.is_dir():
        raise InvalidInputError(
            f"The '--runs' option of deepscope dashboard must be a folder of run folders. "
            f"Got the file {str(runs)!r} instead. Pass the folder that holds the runs.")
    runs.mkdir(parents=True, exist_ok=True)
    cmd = streamlit_command(args.port)
    env = dict(os.environ)
    env[RUNS_ENV] = str(runs)
    url = f"http://127.0.0.1:{args.port}"
    if not getattr(args, "quiet", False):
        print(f"deepscope dashboard: {url}  (runs: {runs}; Ctrl+C to stop)", flush=True)
    if not args.no_browser:
        threading.Thread(target=_open_when_ready, args=(url, args.port), daemon=True).start()
    return _serve(cmd, env)


def _serve(cmd: list[str], env: dict[str, str]) -> int:
    """Run Streamlit as a child that never outlives this process (SIGTERM is forwarded)."""
    proc = subprocess.Popen(cmd, env=env)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: proc.terminate()) if main else None
    try:
        return proc.wait()
    except KeyboardInterrupt:  # Ctrl+C reaches the child too (same process group)
        return 0
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if main:
            signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Run this command on its own: ``python -m deepscope.commands.dashboard --runs runs``."""
    parser = argparse.ArgumentParser(prog="deepscope dashboard", description=HELP)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
