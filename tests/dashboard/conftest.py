"""A tiny runs folder shared by the dashboard tests: one mlp-digits run, trained for 2 epochs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.dashboard.helpers import APP, RUN_ID


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<tmp>/runs/mlp-digits``: a real run folder made by the trainer (about a second)."""
    import zoo

    root = tmp_path_factory.mktemp("dashboard") / "runs"
    zoo.train(preset="mlp-digits", out=root / RUN_ID, epochs=2, progress=False, device="cpu")
    return root


@pytest.fixture()
def app_env(runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the app at the tiny runs folder (what ``deepscope dashboard --runs`` does)."""
    monkeypatch.setenv("DEEPSCOPE_RUNS", str(runs_dir))
    return runs_dir


@pytest.fixture()
def app(app_env: Path):
    """A fresh ``AppTest`` of the dashboard, already run once (lands on the Runs page)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


os.environ.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
