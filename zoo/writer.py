"""One writer per run folder, no silent overwrite, and a space check before training starts.

* :func:`writer_lock` -- an advisory ``fcntl.flock`` on ``writer.lock`` inside the run folder.
  The file holds the writer's pid and host, only for the message a second writer gets
  (:class:`explain.errors.RunLockedError`); the lock itself dies with its process, so a lock
  left by a killed writer is taken over by the next one. Readers never take it: the commit
  protocol of :mod:`zoo.checkpoint` lets them see the previous run or the new one, whole.
* :func:`existing_run` -- what a folder already holds, and :func:`refuse_existing` the
  :class:`explain.errors.RunExistsError` naming it (model, data, test accuracy, date) and the
  choices (resume, overwrite, another folder).
* :func:`fresh_run_folder` -- ``root/name``, else ``root/name-2``, ... never a folder with a run.
* :func:`check_space` -- the expected size of one save against the free space on that disk.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from explain._core.io import format_bytes, free_bytes, write_error
from explain.errors import RunExistsError, RunLockedError, RunWriteError

try:  # POSIX; elsewhere the lock is a no-op (atomic commits still hold)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "writer_lock", "existing_run", "refuse_existing", "fresh_run_folder",
           "check_space", "save_sizes", "ExistingRun"]

LOCK_NAME = "writer.lock"
JSON_MARGIN = 2 << 20  # run.json (history, metrics), vocabulary, tokenizer files: a generous bound
_held: dict[tuple[str, int], int] = {}  # (folder, thread) -> depth: save_run inside train()
_held_guard = threading.Lock()


def _holder(lock: Path, patience: float = 1.0) -> str:
    """Who holds ``lock``: its pid file, re-read for up to ``patience`` seconds while it is empty
    or names a dead local process (a new holder writes its pid just after taking the lock)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            info = json.loads(lock.read_text(encoding="utf-8") or "{}")
            pid, host, since = int(info["pid"]), str(info["host"]), str(info["since"])
            if host != socket.gethostname() or _alive(pid):
                return f"pid {pid} on host {host!r} (since {since})"
        except (OSError, ValueError, KeyError, TypeError):
            pass
        if time.monotonic() >= deadline:
            return "another process (it has not written its pid yet)"
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: it exists, owned by someone else
        return True
    return True


def _open_lock(folder: Path) -> int:
    path = folder / LOCK_NAME
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        named = path if exc.filename == str(path) else folder
        raise write_error(exc, named, kept="Nothing was trained or written.") from exc


@contextlib.contextmanager
def writer_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold ``folder``'s writer lock for the block (created with the folder if missing).

    Re-entrant in one thread (``save_run`` inside ``train``); a second writer -- another process
    or another thread -- gets :class:`explain.errors.RunLockedError` at once, naming the holder.

    Examples
    --------
    >>> import tempfile
    >>> with writer_lock(tempfile.mkdtemp()) as folder:
    ...     (folder / "writer.lock").exists()
    True
    """
    folder = Path(folder)
    key = (str(folder.absolute()), threading.get_ident())
    with _held_guard:
        depth = _held.get(key, 0)
        if depth:
            _held[key] = depth + 1
    if depth:
        try:
            yield folder
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    fd = _open_lock(folder)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunLockedError(
                    f"Run folder {str(folder)!r} is being written by {_holder(folder / LOCK_NAME)}."
                    f" Wait for it to finish, stop that process, or train into another "
                    f"folder.") from None
        _write_holder(fd, folder)
        with _held_guard:
            _held[key] = 1
        try:
            yield folder
        finally:
            with _held_guard:
                del _held[key]
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # released: no stale pid in the next message
    finally:
        os.close(fd)  # closing releases the flock


def _write_holder(fd: int, folder: Path) -> None:
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    data = json.dumps(info).encode("utf-8")
    try:  # overwrite in place, then cut: a reader never sees an empty file in between
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    except OSError as exc:
        raise write_error(exc, folder / LOCK_NAME, kept="Nothing was trained or written.") from exc


# ----------------------------------------------------------------------------- existing runs
@dataclass(frozen=True)
class ExistingRun:
    """What a folder already holds: enough to say it in one sentence."""

    folder: Path
    model: str
    data: str | None
    preset: str | None
    test_accuracy: float | None
    epoch: int
    epochs: int | None
    complete: bool
    resumable: bool
    saved: str
    unreadable: str | None = None

    def describe(self) -> str:
        if self.unreadable is not None:
            return f"a run that cannot be read ({self.unreadable})"
        what = f"{self.model} on {self.data}" if self.data else self.model
        if self.preset:
            what += f" (preset {self.preset})"
        acc = (f", test accuracy {self.test_accuracy:.4f}" if isinstance(self.test_accuracy, float)
               else "")
        if self.complete:
            epochs = f"{self.epoch} epoch{'s' if self.epoch != 1 else ''}"
            return f"a complete run: {what}{acc}, {epochs}, saved {self.saved}"
        of = f" of {self.epochs}" if self.epochs else ""
        return f"an unfinished run: {what}, epoch {self.epoch}{of}, saved {self.saved}"


def existing_run(folder: str | os.PathLike) -> ExistingRun | None:
    """What ``folder`` holds, or ``None`` if it holds no run (no ``run.json``)."""
    from zoo.checkpoint import read_manifest

    folder = Path(folder)
    record = folder / "run.json"
    if not record.is_file():
        return None
    saved = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.stat().st_mtime))
    try:
        m = read_manifest(folder)
    except (OSError, ValueError) as exc:
        first = (str(exc).splitlines() or [""])[0][:200]
        return ExistingRun(folder, "?", None, None, None, 0, None, False, False, saved, first)
    metrics: dict[str, Any] = m["metrics"]
    data = m.get("dataset")
    config = m.get("config") or {}
    return ExistingRun(
        folder=folder, model=m["model"]["name"],
        data=data.get("name") if isinstance(data, dict) else None, preset=m.get("preset"),
        test_accuracy=metrics.get("test_accuracy"), epoch=m["epoch"],
        epochs=config.get("epochs") if isinstance(config.get("epochs"), int) else None,
        complete=bool(metrics.get("complete", True)),
        resumable="resume.safetensors" in m["files"] and isinstance(m.get("resume"), dict),
        saved=saved)


def refuse_existing(found: ExistingRun) -> RunExistsError:
    """The error for training into ``found.folder`` without ``resume`` or ``overwrite``."""
    resume = ("Continue it with resume=True (CLI: --resume), replace"
              if found.resumable else "Replace")
    return RunExistsError(
        f"Run folder {str(found.folder)!r} already holds {found.describe()}. {resume} it with "
        f"overwrite=True (CLI: --overwrite; the old run stays readable until the new one is "
        f"saved), or train into another folder.")


def fresh_run_folder(root: str | os.PathLike, name: str) -> Path:
    """``root/name``, else ``root/name-2``, ``root/name-3``, ...: the first that holds nothing
    (missing, or empty but for a released writer lock)."""
    root = Path(root)
    candidate, n = root / name, 1
    while candidate.exists() and (not candidate.is_dir()
                                  or any(p.name != LOCK_NAME for p in candidate.iterdir())):
        n += 1
        candidate = root / f"{name}-{n}"
    return candidate


# ----------------------------------------------------------------------------- space
def check_space(folder: Path, state_bytes: int, resume_bytes: int) -> None:
    """Raise :class:`explain.errors.RunWriteError` now if one save will not fit on the disk."""
    needed = state_bytes + resume_bytes + JSON_MARGIN
    free = free_bytes(folder)
    if free is None or free >= needed:
        return
    raise RunWriteError(
        f"Not enough space to train into {str(folder)!r}: one save needs about "
        f"{format_bytes(needed)} (weights {format_bytes(state_bytes)}, resume state "
        f"{format_bytes(resume_bytes)}, {format_bytes(JSON_MARGIN)} for JSON) and only "
        f"{format_bytes(free)} is free on that disk. Training did not start. Free some space, "
        f"or train into a folder on another disk.",
        errno=errno.ENOSPC, filename=str(folder), needed=needed, free=free)


_OPTIMIZER_SLOTS = {"sgd": 0, "sgd+momentum": 1, "adam": 2, "adamw": 2, "adagrad": 1,
                    "rmsprop": 1}


def save_sizes(net: nn.Module, optimizer: str, early_stopping: int | None) -> tuple[int, int]:
    """Bytes of one save's weights and of its resume state (optimizer slots + best weights)."""
    weights = sum(t.numel() * t.element_size() for t in net.state_dict().values())
    trainable = sum(p.numel() * p.element_size() for p in net.parameters() if p.requires_grad)
    best = weights if early_stopping is not None else 0
    return weights, _OPTIMIZER_SLOTS.get(optimizer, 2) * trainable + best
