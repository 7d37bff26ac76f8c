"""The dashboard's "Train a preset" never replaces a run unless the user ticks the box (issue 18)."""

from __future__ import annotations

import hashlib
import shutil

import pytest

import zoo
from tests.dashboard.helpers import APP


def digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def taken(runs_dir, tmp_path, monkeypatch):
    """A runs folder whose ``mlp-digits`` already holds a run (a copy of the shared one)."""
    root = tmp_path / "runs"
    shutil.copytree(runs_dir / "mlp-digits", root / "mlp-digits")
    monkeypatch.setenv("DEEPSCOPE_RUNS", str(root))
    return root


def _form(root):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=300).run()
    at.selectbox(key="train_preset").set_value("mlp-digits")
    at.number_input(key="train_epochs").set_value(1)
    return at.run()


def test_the_form_says_what_is_there_and_asks_before_replacing(taken):
    # Act
    at = _form(taken)
    # Assert
    acc = zoo.load_run(taken / "mlp-digits").test_accuracy
    (warning,) = [w.value for w in at.warning]
    assert warning.startswith(f"`mlp-digits` already holds a complete run: mlp on digits (preset "
                              f"mlp-digits), test accuracy {acc:.4f}, 2 epochs, saved ")
    assert at.checkbox(key="train_replace").value is False
    assert any("Training goes to a new folder, `mlp-digits-2`, unless you tick the box." in c.value
               for c in at.caption)


@pytest.mark.slow  # trains twice (a few seconds)
def test_train_keeps_the_old_run_unless_replace_is_ticked(taken):
    # Arrange
    before = digest(taken / "mlp-digits")
    at = _form(taken)
    # Act 1: not ticked -> a new folder
    at.button(key="train_go").click().run()
    # Assert 1
    assert not at.exception and not at.error
    assert at.session_state["run_id"] == "mlp-digits-2"
    assert digest(taken / "mlp-digits") == before
    # Act 2: ticked -> the run in mlp-digits is replaced
    at = _form(taken)
    at.checkbox(key="train_replace").check().run()
    at.button(key="train_go").click().run()
    # Assert 2
    assert not at.exception and not at.error
    assert at.session_state["run_id"] == "mlp-digits"
    assert zoo.load_run(taken / "mlp-digits").epoch == 1 and digest(taken / "mlp-digits") != before
    assert sorted(p.name for p in taken.iterdir()) == ["mlp-digits", "mlp-digits-2"]
