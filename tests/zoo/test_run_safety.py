"""A finished run is never lost: no silent overwrite, one writer at a time, write errors that say
what to do (issue 18). Every failure compares the previous run's bytes before and after."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import torch

import zoo
from explain.errors import (
    DeepscopeError,
    InvalidInputError,
    RunExistsError,
    RunLockedError,
    RunWriteError,
    TrainingDivergedError,
)
from zoo import checkpoint, writer

FAST = dict(progress=False, monitor=False, device="cpu")


def digest(folder, lock: bool = True) -> dict[str, str]:
    """sha256 of every file in the folder (the writer lock too, unless a writer holds it)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir())
            if p.is_file() and (lock or p.name != writer.LOCK_NAME)}


def first_weight(model) -> torch.Tensor:
    return model.state_dict()["layers.0.weight"]


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir()
                  if p.name.endswith((".tmp", ".new")) or p.name.startswith("."))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A complete mlp-digits run (1 epoch)."""
    out = tmp_path_factory.mktemp("finished") / "r"
    zoo.train(preset="mlp-digits", out=out, epochs=1, **FAST)
    return out


@pytest.fixture(scope="module")
def unfinished(tmp_path_factory):
    """An unfinished mlp-digits run: epoch 1 of 3, with resume state."""
    out = tmp_path_factory.mktemp("unfinished") / "r"
    zoo.train(preset="mlp-digits", out=out, epochs=3, stop_after=1, **FAST)
    return out


def copy_of(src, tmp_path, name="run"):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


# ----------------------------------------------------------------------------- no silent overwrite
def test_training_into_a_finished_run_is_refused_and_names_it(finished, tmp_path):
    # Arrange
    out = copy_of(finished, tmp_path)
    before = digest(out)
    acc = zoo.load_run(out).test_accuracy
    # Act
    with pytest.raises(RunExistsError) as info:
        zoo.train(preset="mlp-digits", out=out, epochs=1, **FAST)
    # Assert
    assert re.fullmatch(
        rf"Run folder '{re.escape(str(out))}' already holds a complete run: mlp on digits "
        rf"\(preset mlp-digits\), test accuracy {acc:.4f}, 1 epoch, saved "
        r"\d{4}-\d\d-\d\d \d\d:\d\d\. Replace it with overwrite=True \(CLI: --overwrite; the old "
        r"run stays readable until the new one is saved\), or train into another folder\.",
        str(info.value))
    assert isinstance(info.value, FileExistsError) and isinstance(info.value, DeepscopeError)
    assert digest(out) == before


def test_an_unfinished_run_offers_resume(unfinished, tmp_path):
    out = copy_of(unfinished, tmp_path)
    before = digest(out)
    with pytest.raises(RunExistsError, match=r"holds an unfinished run: mlp on digits \(preset "
                       r"mlp-digits\), epoch 1 of 3, saved .*\. Continue it with resume=True "
                       r"\(CLI: --resume\), replace it with overwrite=True"):
        zoo.train(preset="mlp-digits", out=out, epochs=3, **FAST)
    assert digest(out) == before


def test_an_unreadable_run_is_not_replaced_silently(finished, tmp_path):
    out = copy_of(finished, tmp_path)
    (out / "run.json").write_text("{not json")
    with pytest.raises(RunExistsError, match="already holds a run that cannot be read"):
        zoo.train(preset="mlp-digits", out=out, epochs=1, **FAST)


def test_overwrite_keeps_the_old_run_readable_until_the_new_one_commits(finished, tmp_path):
    # Arrange
    out = copy_of(finished, tmp_path)
    before, run_files = digest(out), digest(out, lock=False)
    old = zoo.load_run(out)
    seen = []

    def during(epoch, total, metrics):  # every epoch: the folder still holds the old run
        seen.append((epoch, digest(out, lock=False) == run_files, zoo.load_run(out).epoch))

    # Act
    new = zoo.train(preset="mlp-digits", out=out, epochs=3, overwrite=True, callback=during,
                    **FAST)
    # Assert
    assert seen == [(1, True, 1), (2, True, 1), (3, True, 1)]
    loaded = zoo.load_run(out)
    assert (loaded.epoch, loaded.metrics["complete"]) == (3, True)
    assert torch.equal(first_weight(loaded.model), first_weight(new.model))
    assert not torch.equal(first_weight(loaded.model), first_weight(old.model))
    assert leftovers(out) == [] and before != digest(out)


def test_overwrite_that_diverges_keeps_the_previous_run(finished, tmp_path):
    out = copy_of(finished, tmp_path)
    before = digest(out)
    with pytest.raises(TrainingDivergedError,
                       match=rf"training stopped and the previous run in {re.escape(str(out))} "
                             r"was kept\. Lower the learning rate"):
        zoo.train("mlp", "digits", out=out, epochs=6, lr=1e6, optimizer="sgd", overwrite=True,
                  **FAST)
    assert digest(out) == before


def test_resume_and_overwrite_together_is_an_error(finished):
    with pytest.raises(InvalidInputError, match="got resume=True and overwrite=True: choose one"):
        zoo.train(preset="mlp-digits", out=finished, resume=True, overwrite=True, **FAST)


def test_fresh_run_folder_never_picks_a_folder_with_a_run(finished, tmp_path):
    copy_of(finished, tmp_path, "mlp-digits")
    (tmp_path / "mlp-digits-2").mkdir()
    (tmp_path / "mlp-digits-2" / "notes.txt").write_text("mine")
    (tmp_path / "mlp-digits-3").write_text("a file, not a folder")
    (tmp_path / "mlp-digits-4").mkdir()
    (tmp_path / "mlp-digits-4" / writer.LOCK_NAME).write_text("")  # a released lock only
    assert writer.fresh_run_folder(tmp_path, "mlp-digits") == tmp_path / "mlp-digits-4"
    assert writer.fresh_run_folder(tmp_path, "other") == tmp_path / "other"


# ----------------------------------------------------------------------------- one writer
RACER = textwrap.dedent("""
    import json, os, sys, time
    from pathlib import Path
    import zoo
    from explain.errors import RunLockedError

    out, sync = sys.argv[1], Path(sys.argv[2])

    def wait_for(name):
        while not (sync / name).exists():
            time.sleep(0.01)

    def hold(*args):  # the winner keeps the lock until the test has looked
        (sync / "holding").touch()
        wait_for("release")

    (sync / f"ready-{os.getpid()}").touch()
    wait_for("go")
    try:
        zoo.train(preset="mlp-digits", out=out, epochs=2, progress=False, monitor=False,
                  device="cpu", callback=hold)
        outcome = ["won", ""]
    except RunLockedError as exc:
        outcome = ["locked", str(exc)]
    print(json.dumps([os.getpid(), *outcome]))
""")


def test_two_processes_racing_for_one_folder_exactly_one_wins(tmp_path):
    # Arrange: two real processes, both ready (imports done), then released at once
    out, sync = tmp_path / "race", tmp_path / "sync"
    sync.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(out), str(sync)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    try:
        _until(lambda: len(list(sync.glob("ready-*"))) == 2, procs)
        (sync / "go").touch()
        # Act: the loser finishes while the winner still holds the lock after epoch 1
        _until(lambda: (sync / "holding").exists(), procs)
        during = zoo.load_run(out)  # a reader needs no lock and sees a complete run
        (sync / "release").touch()
        outputs = [p.communicate(timeout=600) for p in procs]
    finally:
        (sync / "release").touch()
        for p in procs:
            if p.poll() is None:
                p.kill()
    # Assert
    assert [p.returncode for p in procs] == [0, 0], outputs
    results = sorted((json.loads(o) for o, _ in outputs), key=lambda r: r[1])  # locked, won
    (loser_pid, lost, message), (winner_pid, won, _) = results
    assert (lost, won) == ("locked", "won"), results
    assert message.startswith(
        f"Run folder '{out}' is being written by pid {winner_pid} on host "
        f"'{socket.gethostname()}' (since ")
    assert message.endswith("Wait for it to finish, stop that process, or train into another "
                            "folder.")
    assert (during.epoch, during.metrics["complete"]) == (1, False)
    assert zoo.load_run(out).epoch == 2 and (out / writer.LOCK_NAME).read_text() == ""


def _until(ready, procs) -> None:
    """Poll ``ready()``; fail with the children's output if one crashed or both ended first."""
    while not ready():
        codes = [p.poll() for p in procs]
        if any(c not in (None, 0) for c in codes) or all(c is not None for c in codes):
            pytest.fail(f"racers exited with {codes}: {[p.communicate() for p in procs]}")
        time.sleep(0.01)


def test_a_second_thread_is_refused_too(tmp_path):
    out = tmp_path / "t"
    errors: list[BaseException] = []
    with writer.writer_lock(out):
        def other():
            try:
                zoo.train(preset="mlp-digits", out=out, epochs=1, **FAST)
            except BaseException as exc:
                errors.append(exc)
        t = threading.Thread(target=other)
        t.start()
        t.join()
    (err,) = errors
    assert isinstance(err, RunLockedError) and f"pid {os.getpid()}" in str(err)
    assert not (out / "run.json").exists()


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    # Arrange: a process takes the lock and dies holding it (SIGKILL: no clean-up ran)
    out = tmp_path / "stale"
    code = textwrap.dedent(f"""
        import os, signal
        from zoo.writer import writer_lock
        with writer_lock({str(out)!r}):
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], timeout=120)
    assert proc.returncode == -9
    assert '"pid"' in (out / writer.LOCK_NAME).read_text()
    # Act
    run = zoo.train(preset="mlp-digits", out=out, epochs=1, **FAST)
    # Assert
    assert run.epoch == 1 and zoo.load_run(out).metrics["complete"] is True
    assert (out / writer.LOCK_NAME).read_text() == ""


def test_readers_always_see_a_whole_run_while_a_writer_commits(finished, tmp_path):
    # Arrange: version k of the run has every first-layer weight equal to k
    out = copy_of(finished, tmp_path)
    run = zoo.load_run(out)

    def commit(k: int) -> None:
        with torch.no_grad():
            first_weight(run.model).fill_(float(k))
        checkpoint.save_run(run, out)

    commit(0)
    stop = threading.Event()

    def keep_committing() -> None:
        for k in range(1, 300):
            if stop.is_set():
                return
            commit(k)

    writer_thread = threading.Thread(target=keep_committing)
    writer_thread.start()
    # Act: read while it commits (no lock)
    seen = []
    try:
        for _ in range(60):
            w = first_weight(zoo.load_run(out).model)
            seen.append(sorted(set(w.flatten().tolist())))
    finally:
        stop.set()
        writer_thread.join()
    # Assert: every read is one whole committed version
    assert len(seen) == 60 and all(len(v) == 1 and v[0] == int(v[0]) for v in seen)


# ----------------------------------------------------------------------------- write errors
def _failing_fsync(monkeypatch, fail_at: int, code: int):
    """os.fsync raising ``code`` at the ``fail_at``-th fsync of a regular file."""
    import stat
    real = os.fsync
    calls = {"n": 0}

    def fake(fd):
        if stat.S_ISREG(os.fstat(fd).st_mode):
            calls["n"] += 1
            if calls["n"] == fail_at + 1:
                raise OSError(code, os.strerror(code))
        return real(fd)
    monkeypatch.setattr(os, "fsync", fake)
    return calls


def _failing_write(monkeypatch, fail_at: int, code: int):
    """Files opened by the atomic writer write half their bytes, then raise ``code``."""
    real = os.fdopen
    calls = {"n": 0}

    class Half:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def __getattr__(self, name):
            return getattr(self.f, name)

        def write(self, data):
            calls["n"] += 1
            if calls["n"] == fail_at + 1:
                self.f.write(data[: len(data) // 2])
                raise OSError(code, os.strerror(code))
            return self.f.write(data)

    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: Half(real(fd, *a, **k)))
    return calls


SAVE_FILES = ["model.safetensors.new", "resume.safetensors.new", "run.json"]


@pytest.mark.parametrize("how", ["write", "fsync"])
@pytest.mark.parametrize("fail_at", range(3))
def test_disk_full_at_every_write_keeps_the_previous_run(unfinished, tmp_path, monkeypatch,
                                                         how, fail_at):
    # Arrange: resume an unfinished run; its next save (model, resume state, run.json) fails
    out = copy_of(unfinished, tmp_path)
    before = digest(out)
    fail = _failing_write if how == "write" else _failing_fsync
    fail(monkeypatch, fail_at, 28)  # ENOSPC
    # Act
    with pytest.raises(RunWriteError) as info:
        zoo.train(preset="mlp-digits", out=out, epochs=3, resume=True, **FAST)
    monkeypatch.undo()
    # Assert
    err = info.value
    target = out / SAVE_FILES[fail_at]
    assert isinstance(err, OSError) and err.errno == 28 and err.filename == str(target)
    assert re.fullmatch(
        rf"Could not write '{re.escape(str(target))}': the disk is full \(it needed "
        r"\d+(\.\d)? k?B; [\d.]+ [kMGT]?B free\)\. The previous run in "
        rf"'{re.escape(str(out))}' is unchanged and no temporary files were left\. Free some "
        r"space on that disk, or write to a folder on another disk\.", str(err))
    assert err.needed is not None and err.needed > 0 and err.free is not None
    assert digest(out) == before
    assert leftovers(out) == []
    assert zoo.load_run(out).epoch == 1


@pytest.mark.parametrize("code, cause, fix", [
    (30, "the file system is read-only", "Write to a folder on a writable disk."),
    (13, "permission denied", "Write to a folder you own, or make this one writable "
                              r"\(chmod u\+w\)\."),
    (1, "permission denied", "Write to a folder you own"),
    (122, r"the disk quota is used up \(it needed", "Free some space"),
])
def test_other_write_errors_say_what_to_do(finished, tmp_path, monkeypatch, code, cause, fix):
    out = copy_of(finished, tmp_path)
    before = digest(out)
    _failing_write(monkeypatch, 0, code)
    with pytest.raises(RunWriteError, match=rf"^Could not write '{re.escape(str(out))}/model\."
                       rf"safetensors\.new': {cause}.*{fix}"):
        zoo.train(preset="mlp-digits", out=out, epochs=1, overwrite=True, **FAST)
    monkeypatch.undo()
    assert digest(out) == before and leftovers(out) == []


def test_a_path_too_long_is_a_write_error_before_training(tmp_path):
    out = tmp_path / ("x" * 300)
    with pytest.raises(RunWriteError) as info:
        zoo.train(preset="mlp-digits", out=out, epochs=1, **FAST)
    assert str(info.value) == (
        f"Could not write '{out}': the path is too long ({len(str(out))} characters, the "
        f"longest name 300). Nothing was trained or written. Use a shorter folder path or name.")
    assert info.value.errno == 36 and not os.path.exists(out)


def test_free_space_is_checked_before_training_starts(finished, tmp_path, monkeypatch):
    # Arrange: 1000 bytes free
    import explain._core.io as io
    out = copy_of(finished, tmp_path)
    before = digest(out)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(io.shutil, "disk_usage", lambda p: usage._replace(free=1000))
    epochs: list[int] = []
    # Act
    with pytest.raises(RunWriteError) as info:
        zoo.train(preset="mlp-digits", out=out, epochs=5, overwrite=True,
                  callback=lambda e, *a: epochs.append(e), **FAST)
    # Assert: mlp depth 2 width 64 on 8x8 digits: 8,970 floats -> 35,880 bytes; Adam: 2 copies
    assert str(info.value) == (
        f"Not enough space to train into '{out}': one save needs about 2.2 MB (weights 35.9 kB, "
        f"resume state 71.8 kB, 2.1 MB for JSON) and only 1.0 kB is free on that disk. Training "
        f"did not start. Free some space, or train into a folder on another disk.")
    assert (info.value.errno, info.value.free, info.value.needed) == (28, 1000, 35880 + 71760 + 2 * 2**20)
    assert epochs == [] and digest(out) == before


# ----------------------------------------------------------------------------- a real full disk
@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs (root only; skipped where mounting is not allowed)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                       check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=30)


def test_a_real_full_disk_is_refused_before_training_and_at_a_write(finished, tiny_disk,
                                                                    monkeypatch):
    # Arrange: the finished run on the tiny disk
    out = tiny_disk / "r"
    shutil.copytree(finished, out)
    before = digest(out)
    # Act 1: 1 MiB cannot hold a save plus the JSON margin: refused before training
    with pytest.raises(RunWriteError, match=r"^Not enough space to train into .* Training did "
                                            r"not start\."):
        zoo.train(preset="mlp-digits", out=out, epochs=1, overwrite=True, **FAST)
    assert digest(out) == before
    # Act 2: without the check, fill the disk; the real ENOSPC comes at the first write
    monkeypatch.setattr("zoo.trainer.check_space", lambda *a: None)
    fd = os.open(tiny_disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:  # full; give back two pages: room for the lock's pid, not for the weights
        os.ftruncate(fd, max(0, os.fstat(fd).st_size - 8192))
    finally:
        os.close(fd)
    with pytest.raises(RunWriteError) as info:
        zoo.train(preset="mlp-digits", out=out, epochs=1, overwrite=True, **FAST)
    # Assert
    assert info.value.errno == 28 and info.value.filename == str(out / "model.safetensors.new")
    assert re.search(r"the disk is full \(it needed 3\d\.\d kB; \d+(\.\d)? k?B free\)",
                     str(info.value))
    assert f"The previous run in '{out}' is unchanged" in str(info.value)
    assert digest(out) == before and leftovers(out) == []
    assert zoo.load_run(out).epoch == 1


def test_a_real_read_only_disk(finished, tmp_path):
    mnt = tmp_path / "ro"
    mnt.mkdir()
    shutil.copytree(finished, mnt / "r")
    try:
        subprocess.run(["mount", "--bind", str(mnt), str(mnt)], check=True, capture_output=True,
                       timeout=30)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mnt)], check=True,
                       capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=30)
        pytest.skip("cannot make a read-only bind mount here (needs root)")
    try:
        before = digest(mnt / "r")
        with pytest.raises(RunWriteError, match=r"the file system is read-only\. Nothing was "
                                                r"trained or written\. Write to a folder on a "
                                                r"writable disk\.$"):
            zoo.train(preset="mlp-digits", out=mnt / "r", epochs=1, overwrite=True, **FAST)
        assert digest(mnt / "r") == before
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=30)
