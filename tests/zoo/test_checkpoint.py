"""Run folders: hostile files refused, tampering caught, atomic commits, typed errors."""

import json
import os
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch

import zoo
from explain.errors import CorruptRunError, DataNotFoundError, UnsafeFileError
from zoo import checkpoint


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "r"
    zoo.train("cnn", "digits", out=out, epochs=1, progress=False, monitor=False)
    return out


def _copy(src, dst):
    dst.mkdir()
    for p in src.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


class Boom:
    def __reduce__(self):
        return (os.system, ("touch /tmp/deepscope-pwned",))


def test_pickle_in_place_of_weights_is_refused_and_nothing_runs(run_dir, tmp_path):
    bad = _copy(run_dir, tmp_path / "bad")
    payload = pickle.dumps(Boom())
    (bad / "model.safetensors").write_bytes(payload)
    manifest = json.loads((bad / "run.json").read_text())
    import hashlib
    manifest["files"]["model.safetensors"] = hashlib.sha256(payload).hexdigest()  # a careful attacker
    (bad / "run.json").write_text(json.dumps(manifest))
    if os.path.exists("/tmp/deepscope-pwned"):
        os.unlink("/tmp/deepscope-pwned")
    with pytest.raises(UnsafeFileError, match="pickle"):
        zoo.load_run(bad)
    assert not os.path.exists("/tmp/deepscope-pwned")


@pytest.mark.parametrize("name", ["model.pt", "extra.pkl", "weights.pth"])
def test_pickle_files_in_folder_are_refused(run_dir, tmp_path, name):
    bad = _copy(run_dir, tmp_path / "bad")
    torch.save({"x": 1}, bad / name)
    with pytest.raises(UnsafeFileError, match=f"contains '{name}'.*never loads pickled"):
        zoo.load_run(bad)


def test_flipped_byte_is_caught(run_dir, tmp_path):
    bad = _copy(run_dir, tmp_path / "bad")
    data = bytearray((bad / "model.safetensors").read_bytes())
    data[len(data) // 2] ^= 0x01
    (bad / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CorruptRunError, match="'model.safetensors' does not match the SHA-256"):
        zoo.load_run(bad)


def test_truncated_file(run_dir, tmp_path):
    bad = _copy(run_dir, tmp_path / "bad")
    data = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[:100])
    with pytest.raises(CorruptRunError, match="model.safetensors"):
        zoo.load_run(bad)


@pytest.mark.parametrize("content,match", [
    (b"\xff\xfe\x00garbage", "not valid UTF-8 JSON"),
    (b"{not json", "not valid UTF-8 JSON"),
    (b"[]", "no field 'format'"),
    (b'{"format": "deepscope.run", "version": 1}', "no field 'model'"),
    (b'{"format": "deepscope.run", "version": 1, "model": {"name": 3, "kwargs": {}}}',
     "'model.name' must be str; got int"),
    (b'{"format": "other"}', "format is 'other'"),
])
def test_invalid_run_json(run_dir, tmp_path, content, match):
    bad = _copy(run_dir, tmp_path / "bad")
    (bad / "run.json").write_bytes(content)
    with pytest.raises(CorruptRunError, match=match):
        zoo.load_run(bad)


def test_missing_run_json_and_missing_folder(run_dir, tmp_path):
    bad = _copy(run_dir, tmp_path / "bad")
    (bad / "run.json").unlink()
    with pytest.raises(CorruptRunError, match="run.json is missing"):
        zoo.load_run(bad)
    with pytest.raises(DataNotFoundError, match="does not exist.*deepscope train"):
        zoo.load_run(tmp_path / "nope")


def test_path_traversal_in_manifest_is_refused(run_dir, tmp_path):
    bad = _copy(run_dir, tmp_path / "bad")
    manifest = json.loads((bad / "run.json").read_text())
    manifest["files"]["../../etc/passwd"] = "0" * 64
    (bad / "run.json").write_text(json.dumps(manifest))
    with pytest.raises(CorruptRunError, match="invalid file entry"):
        zoo.load_run(bad)


def test_unknown_model_in_manifest(run_dir, tmp_path):
    bad = _copy(run_dir, tmp_path / "bad")
    manifest = json.loads((bad / "run.json").read_text())
    manifest["model"]["name"] = "os.system"
    (bad / "run.json").write_text(json.dumps(manifest))
    with pytest.raises(CorruptRunError, match="unknown model"):
        zoo.load_run(bad)


def test_interrupted_commit_keeps_previous_or_new_run(run_dir, tmp_path, monkeypatch):
    """Kill the writer at every step of a commit: the folder loads as the old run or the new one."""
    old = zoo.load_run(run_dir)
    new_model = zoo.create_model("cnn", **old.card.kwargs)
    with torch.no_grad():
        for p in new_model.parameters():
            p.fill_(0.5)
    new_state = new_model.state_dict()
    real_replace = os.replace
    outcomes = set()
    for crash_at in range(1, 8):
        folder = _copy(run_dir, tmp_path / f"c{crash_at}")
        calls = {"n": 0}

        def flaky_replace(a, b, _n=crash_at, _c=calls):
            _c["n"] += 1
            if _c["n"] == _n:
                raise KeyboardInterrupt("simulated kill")
            return real_replace(a, b)

        monkeypatch.setattr(os, "replace", flaky_replace)
        run = zoo.load_run(folder)
        run.model.load_state_dict(new_state)
        try:
            checkpoint.save_run(run, folder)
        except KeyboardInterrupt:
            pass
        monkeypatch.setattr(os, "replace", real_replace)
        loaded = zoo.load_run(folder)
        got = loaded.model.state_dict()
        is_new = all(torch.equal(got[k], new_state[k]) for k in got)
        is_old = all(torch.equal(got[k], old.model.state_dict()[k]) for k in got)
        assert is_new or is_old
        outcomes.add("new" if is_new else "old")
    assert outcomes == {"old", "new"}  # both sides of the commit point were exercised


def test_sigkill_during_training_leaves_a_loadable_run(tmp_path):
    out = tmp_path / "k"
    code = textwrap.dedent(f"""
        import zoo
        zoo.train("cnn", "digits", out={str(out)!r}, epochs=200, progress=False, monitor=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code])
    import time
    deadline = time.time() + 60
    while time.time() < deadline and not (out / "run.json").exists():
        time.sleep(0.05)
    time.sleep(1.5)
    proc.kill()
    proc.wait()
    run = zoo.load_run(out)
    assert run.epoch >= 1 and run.metrics["complete"] is False
    resumed = zoo.train("cnn", "digits", out=out, epochs=run.epoch + 1, resume=True,
                        progress=False, monitor=False)
    assert resumed.epoch == run.epoch + 1


def test_safetensors_whose_header_length_starts_with_0x80_loads(tmp_path):
    # a header of length 0x..80 makes the first byte 0x80, like a pickle's protocol marker
    from safetensors.torch import load, save
    for n in range(1, 400):
        data = save({"w" * n: torch.zeros(1)})
        if data[:1] == b"\x80":
            break
    assert data[:1] == b"\x80"
    assert set(checkpoint._load_tensors(tmp_path, "model.safetensors", data)) == set(load(data))
