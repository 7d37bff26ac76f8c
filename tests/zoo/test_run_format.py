"""run.json on the shared strict-JSON codec: non-finite values round-trip, old folders load."""

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

import zoo
from zoo.checkpoint import save_run

DATA = Path(__file__).parent / "data"


def _strict(text: str):
    def refuse(token):
        raise ValueError(f"non-strict JSON token {token}")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def small_run():
    return zoo.train("mlp", "digits", epochs=1, progress=False, monitor=False,
                     model_kwargs={"depth": 1, "width": 8})


def test_non_finite_metrics_are_null_plus_pointer_and_come_back(small_run, tmp_path):
    # Arrange
    small_run.metrics = dict(small_run.metrics, test_loss=math.nan, extra=[1.0, -math.inf])
    # Act
    save_run(small_run, tmp_path / "r")
    doc = _strict((tmp_path / "r" / "run.json").read_text())
    loaded = zoo.load_run(tmp_path / "r")
    # Assert
    assert doc["metrics"]["test_loss"] is None and doc["metrics"]["extra"] == [1.0, None]
    assert doc["nonfinite_values"] == [{"path": "/metrics/test_loss", "value": "nan"},
                                       {"path": "/metrics/extra/1", "value": "-inf"}]
    assert math.isnan(loaded.metrics["test_loss"])
    assert loaded.metrics["extra"] == [1.0, -math.inf]
    assert loaded.metrics["test_accuracy"] == small_run.metrics["test_accuracy"]


def test_a_run_folder_written_before_the_codec_still_loads():
    # Arrange: written by the run.json writer of commit 01187a2 (no top-level nonfinite list)
    folder = DATA / "run-v1"
    assert "nonfinite_values" not in json.loads((folder / "run.json").read_text())
    # Act
    run = zoo.load_run(folder)
    # Assert
    assert (run.model_name, run.preset, run.epoch) == ("mlp", "mlp-digits", 2)
    assert run.metrics["test_accuracy"] == pytest.approx(0.2388888888888889)
    assert run.metrics["complete"] is True and run.metrics["n_test"] == 180
    assert run.history.epochs["epoch"] == [1, 2]
    assert run.card.class_names == tuple(str(i) for i in range(10))


def test_an_old_history_with_infinite_values_keeps_them():
    # Arrange: the old History form lists non-finite values by key lists, inside "history"
    folder = DATA / "run-v1-inf-history"
    listed = json.loads((folder / "run.json").read_text())["history"]["nonfinite_values"]
    assert listed[0]["path"] == ["layers", "layers.0", "weight_norm", 1]
    # Act
    run = zoo.load_run(folder)
    # Assert
    norms = run.history.layers["layers.0"]["weight_norm"]
    assert norms[1] == math.inf and math.isfinite(norms[0])


def test_an_old_folder_resaved_by_the_new_writer_reads_back_the_same(tmp_path):
    # Arrange
    old = zoo.load_run(DATA / "run-v1-inf-history")
    # Act
    save_run(old, tmp_path / "again")
    new = zoo.load_run(tmp_path / "again")
    # Assert
    _strict((tmp_path / "again" / "run.json").read_text())
    assert new.metrics == old.metrics and new.history.layers == old.history.layers
    assert all(torch.equal(a, b) for a, b in zip(old.model.state_dict().values(),
                                                  new.model.state_dict().values()))


def test_the_fixture_folders_are_not_modified_by_loading(tmp_path):
    # Arrange: load a copy so a roll-forward could not touch the repository's files
    copy = shutil.copytree(DATA / "run-v1", tmp_path / "copy")
    before = {p.name: p.read_bytes() for p in copy.iterdir()}
    # Act
    zoo.load_run(copy)
    # Assert
    assert {p.name: p.read_bytes() for p in copy.iterdir()} == before
