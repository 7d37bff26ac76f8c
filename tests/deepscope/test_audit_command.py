"""`deepscope audit RUN_DIR`: exit codes 0/1/2, report formats, progress, hostile run folders."""

from __future__ import annotations

import copy
import functools
import json
import pickle
from pathlib import Path

import pytest

import zoo
from deepscope.commands import audit as audit_cmd
from explain.card import Modality, ModelCard
from tests.fixtures.audit import synthetic_history, tiny_data, trained_mlp
from zoo.data.base import DatasetBundle, TensorPairDataset


@functools.lru_cache(maxsize=1)
def _model():
    return trained_mlp(monitor=False)[0]


def fake_run(tmp_path: Path, *, nonfinite: bool) -> zoo.Run:
    """A zoo.Run as zoo.load_run returns it, around a tiny trained MLP and in-memory data."""
    from explain.monitor import History
    model = copy.deepcopy(_model())
    x, y = tiny_data()
    card = ModelCard(name="mlp", modality="tabular", input_shape=(4,), input_dtype="float32",
                     num_classes=3, class_names=("a", "b", "c"))
    h = synthetic_history()
    h["nonfinite"]["grad"] = 1 if nonfinite else 0
    ds = TensorPairDataset(x, y)
    bundle = DatasetBundle(name="tiny", train=ds, val=ds, test=ds, num_classes=3,
                           class_names=("a", "b", "c"), modality=Modality.TABULAR,
                           input_shape=(4,), info={"source": "synthetic"})
    return zoo.Run(model=model, card=card, config=zoo.TrainConfig(), history=History(**h),
                   metrics={"test_accuracy": 1.0}, model_name="mlp", model_kwargs={},
                   dataset_name="tiny", preset="tiny-preset", path=tmp_path, _dataset=bundle)


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """Two run folders, 'healthy' and 'broken' (a non-finite gradient), served by load_run."""
    folders = {}
    for name in ("healthy", "broken"):
        folder = tmp_path / name
        folder.mkdir()
        folders[name] = folder
    made = {f: fake_run(f, nonfinite=(f.name == "broken")) for f in folders.values()}

    def load_run(path):
        return made[Path(path)]
    monkeypatch.setattr(zoo, "load_run", load_run, raising=False)
    # only the non-finite check, so the verdict does not depend on other checks' calibration
    orig = zoo.Run.audit
    monkeypatch.setattr(zoo.Run, "audit",
                        lambda run, **kw: orig(run, checks=["non-finite"], **kw))
    return folders


def test_exit_0_writes_html_next_to_the_run_by_default(runs, capsys):
    code = audit_cmd.main([str(runs["healthy"]), "--samples", "0", "--fail-on", "warn"])
    out = capsys.readouterr()
    assert code == 0
    assert (runs["healthy"] / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert "PASS: Healthy: 1 of 1 checks passed." in out.out
    assert "audit:" in out.err  # the progress bar went to stderr


def test_exit_1_when_a_finding_reaches_fail_on_and_json_report(runs, tmp_path, capsys):
    out = tmp_path / "r.json"
    code = audit_cmd.main([str(runs["broken"]), "--out", str(out), "--samples", "0", "--quiet"])
    assert code == 1
    assert capsys.readouterr().out == ""  # --quiet
    d = json.loads(out.read_text())
    assert d["verdict"]["severity"] == "fail"
    assert d["findings"][0]["check"] == "non-finite"
    assert d["title"] == "Audit of tiny-preset (tiny)"
    assert d["sections"]["card"]["data"]["sizes"] == {"train": 90, "val": 90, "test": 90}


def test_markdown_output_through_the_deepscope_cli(runs, tmp_path):
    from deepscope.cli import main
    out = tmp_path / "r.md"
    code = main(["audit", str(runs["broken"]), "--out", str(out), "--samples", "0",
                 "--fail-on", "fail", "-q"])
    assert code == 1
    assert out.read_text().startswith("# Audit of tiny-preset (tiny)")


@pytest.mark.parametrize("argv, message", [
    (["--samples", "-3"], "--samples: must be an int >= 0. Got '-3' instead"),
    (["--out", "report.pdf"], "--out: must end in .html, .json or .md"),
    (["--fail-on", "info"], "argument --fail-on: invalid choice: 'info'"),
])
def test_exit_2_on_bad_options(runs, capsys, argv, message):
    code = audit_cmd.main([str(runs["healthy"]), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err


def test_exit_2_on_a_missing_folder_with_one_line(tmp_path, capsys):
    code = audit_cmd.main([str(tmp_path / "nope"), "-q"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("deepscope audit: error: ")
    assert "does not exist" in err


class _Boom:
    """Unpickling this runs a command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("layout", ["pickle-as-safetensors", "pkl-file"])
def test_hostile_run_folder_gives_exit_2_and_executes_nothing(tmp_path, capsys, layout):
    # Arrange: a folder that looks like a run, holding a pickle that would run code if loaded
    import hashlib
    folder = tmp_path / "run"
    folder.mkdir()
    marker = tmp_path / "PWNED"
    payload = pickle.dumps(_Boom(marker))
    name = "model.safetensors" if layout == "pickle-as-safetensors" else "model.pkl"
    (folder / name).write_bytes(payload)
    from zoo.checkpoint import RUN_FORMAT, RUN_VERSION
    manifest = {"format": RUN_FORMAT, "version": RUN_VERSION,
                "model": {"name": "cnn", "kwargs": {}},
                "files": {"model.safetensors": hashlib.sha256(payload).hexdigest()},
                "card": {}, "config": {}, "metrics": {}, "epoch": 1}
    (folder / "run.json").write_text(json.dumps(manifest))
    # Act
    from deepscope.cli import main
    code, err = main(["audit", str(folder), "-q"]), capsys.readouterr().err
    # Assert
    assert code == 2, err
    assert "Traceback" not in err and err.count("\n") == 1
    assert "never unpickles" in err or "never loads pickled" in err
    assert not marker.exists()
