"""Finding and loading runs: only run folders inside the runs folder load; uploads are checked."""

from __future__ import annotations

import os
import pickle  # only to build a hostile upload; nothing here ever unpickles
import shutil
import time

import pytest

import explain
from dashboard import runs as R
from tests.dashboard.helpers import RUN_ID


@pytest.fixture()
def uploads(tmp_path, monkeypatch):
    root = tmp_path / "uploads"
    monkeypatch.setattr(R, "upload_root", lambda: root)
    return root


def test_lists_only_complete_run_folders(app_env, tmp_path, monkeypatch):
    # Arrange: a copy of the runs folder plus decoys
    root = tmp_path / "runs"
    shutil.copytree(app_env, root)
    (root / "half").mkdir()
    (root / "half" / "run.json").write_text("{}")             # no weights
    (root / "notes.txt").write_text("x")                       # a file
    (root / "link").symlink_to(app_env / RUN_ID)               # a symlink to a real run
    monkeypatch.setenv("DEEPSCOPE_RUNS", str(root))
    # Act
    ids = [r.id for r in R.list_runs()]
    # Assert
    assert ids == [RUN_ID]


@pytest.mark.parametrize("name", ["../" + RUN_ID, "/etc", "", RUN_ID + "/..", "~"])
def test_paths_typed_by_a_user_never_resolve(app_env, name):
    with pytest.raises(explain.UnknownNameError, match="only opens run folders inside"):
        R.resolve_run(name)


def test_resolves_a_listed_run(app_env):
    assert R.resolve_run(RUN_ID) == (app_env / RUN_ID).resolve()


def test_new_run_folder_never_overwrites(app_env):
    assert R.new_run_folder(RUN_ID).name == RUN_ID + "-2"
    assert R.new_run_folder("fresh").name == "fresh"
    with pytest.raises(explain.InvalidInputError, match="run name must be letters"):
        R.new_run_folder("../escape")


def test_upload_of_a_pickle_is_refused(uploads, app_env):
    record = (app_env / RUN_ID / "run.json").read_bytes()
    hostile = pickle.dumps({"weights": [1, 2, 3]})
    with pytest.raises(explain.UnsafeFileError, match="must be a safetensors file"):
        R.save_upload(hostile, record)
    assert not uploads.exists() or not any(uploads.iterdir())


def test_upload_with_invalid_json_is_refused(uploads, app_env):
    weights = (app_env / RUN_ID / "model.safetensors").read_bytes()
    with pytest.raises(explain.CorruptRunError, match="must be JSON text"):
        R.save_upload(weights, b"{not json")


def test_upload_of_tampered_weights_is_refused_and_removed(uploads, app_env):
    weights = bytearray((app_env / RUN_ID / "model.safetensors").read_bytes())
    weights[-1] ^= 0xFF  # the SHA-256 in run.json no longer matches
    record = (app_env / RUN_ID / "run.json").read_bytes()
    with pytest.raises(explain.CorruptRunError):
        R.save_upload(bytes(weights), record)
    assert list(uploads.iterdir()) == []


def test_upload_of_a_real_run_is_saved_under_fixed_names(uploads, app_env):
    # Arrange
    weights = (app_env / RUN_ID / "model.safetensors").read_bytes()
    record = (app_env / RUN_ID / "run.json").read_bytes()
    # Act
    run_id = R.save_upload(weights, record)
    # Assert
    folder = uploads / run_id
    assert run_id.startswith("upload-")
    assert sorted(p.name for p in folder.iterdir()) == ["model.safetensors", "run.json"]
    assert R.resolve_run(run_id) == folder


def test_abandoned_uploads_are_pruned_and_listed_ones_kept(uploads, app_env):
    # Arrange: an upload this session uses, an abandoned one, a failed leftover, a stranger
    weights = (app_env / RUN_ID / "model.safetensors").read_bytes()
    record = (app_env / RUN_ID / "run.json").read_bytes()
    mine = R.save_upload(weights, record)
    old = uploads / "upload-abandoned"
    leftover = uploads / "tmp-crashed"
    stranger = uploads / "notes"
    for folder in (old, leftover, stranger):
        folder.mkdir()
    two_days_ago = time.time() - 2 * 24 * 3600
    for folder in (uploads / mine, old, leftover, stranger):
        os.utime(folder, (two_days_ago, two_days_ago))
    # Act: listing touches the session's own upload; the next upload prunes the rest
    assert mine in [r.id for r in R.list_runs()]
    second = R.save_upload(weights, record)
    # Assert
    assert sorted(p.name for p in uploads.iterdir()) == sorted([mine, second, "notes"])
    assert R.prune_uploads(max_age_s=0, now=time.time() + 1) == sorted([mine, second])
