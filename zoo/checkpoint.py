"""Run folders: safetensors + JSON only, atomic commits, SHA-256 checked, never unpickled.

A run folder holds::

    model.safetensors    the weights
    run.json             model name + kwargs, card, dataset, config, history, metrics, versions,
                         the SHA-256 of every other file, and the JSON part of the resume state
    resume.safetensors   optimizer tensors, RNG states and early-stopping best weights
    vocab.json           the tokenizer vocabulary (text models)
    tokenizer.json       the Hugging Face tokenizer the data was encoded with, if any, with its
    tokenizer_config.json  options (zoo.data.text.tokenizer_files; restored by load_run)

Commit protocol (a process killed at any moment leaves the previous run or the new one):
new data files are first written as ``NAME.new`` (fsync'd), then ``run.json`` is replaced
atomically -- the commit point -- and only then are the ``.new`` files renamed into place. A
write that fails before the commit point removes its ``.new`` files and raises
:class:`explain.errors.RunWriteError`; the previous run is untouched. Writers hold the folder's
lock (:func:`zoo.writer.writer_lock`); readers take none and never rename: a reader whose
``run.json`` names a hash that only ``NAME.new`` matches reads that file, and a read that a
newer commit overtook starts over. The next writer rolls an interrupted commit forward.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from explain._core.io import atomic_write_bytes, fsync_dir, sha256_file, write_error
from explain._core.jsoncodec import decode, dumps, encode, loads
from explain.card import ModelCard
from explain.errors import (
    CorruptRunError,
    DataNotFoundError,
    InvalidInputError,
    UnknownNameError,
    UnsafeFileError,
)
from zoo.config import TrainConfig
from zoo.data.text import TOKENIZER_FILES
from zoo.run import Run
from zoo.writer import writer_lock

__all__ = ["load_run", "save_run", "read_resume_state", "RUN_FORMAT", "UNSAFE_SUFFIXES"]

RUN_FORMAT = "deepscope.run"
RUN_VERSION = 1
UNSAFE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".joblib", ".ckpt", ".npy", ".npz", ".dill")
_MANAGED = {"model.safetensors", "resume.safetensors", "vocab.json", *TOKENIZER_FILES}
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
_FIX = "Re-train it (`deepscope train PRESET --out DIR`) or restore the folder from a backup."


# ----------------------------------------------------------------------------- writing
def _commit(folder: Path, files: dict[str, bytes], manifest: dict[str, Any]) -> None:
    with writer_lock(folder):  # re-entrant: train() already holds it
        _roll_forward(folder)  # finish an interrupted commit before starting a new one
        hashes = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
        record = dumps(dict(manifest, files=hashes)).encode("utf-8")
        _write_pending(folder, files, record)
        for name in files:
            os.replace(folder / f"{name}.new", folder / name)
        for name in _MANAGED - set(files):  # e.g. the resume state of a finished run
            (folder / name).unlink(missing_ok=True)
        fsync_dir(folder)


def _write_pending(folder: Path, files: dict[str, bytes], record: bytes) -> None:
    """Write ``NAME.new`` files, then ``run.json`` (the commit point). A failure before the
    commit point removes what this commit wrote and raises :class:`RunWriteError`."""
    kept = (f"The previous run in {str(folder)!r} is unchanged and no temporary files were left."
            if (folder / "run.json").exists() else "No temporary files were left.")
    target = folder / "run.json"
    try:
        for name, data in files.items():
            target = folder / f"{name}.new"
            atomic_write_bytes(target, data)
        target = folder / "run.json"
        atomic_write_bytes(target, record)  # the commit point
    except OSError as exc:
        for name in files:
            with contextlib.suppress(OSError):
                (folder / f"{name}.new").unlink(missing_ok=True)
        needed = len(record) if target.name == "run.json" else len(files[target.name[:-4]])
        raise write_error(exc, target, needed=needed, kept=kept) from exc


def _roll_forward(folder: Path) -> None:
    """Rename pending ``NAME.new`` files whose hash the current run.json names."""
    try:
        manifest = loads((folder / "run.json").read_bytes(), what="run.json")
        hashes = manifest.get("files", {}) if isinstance(manifest, dict) else {}
    except (OSError, CorruptRunError):
        hashes = {}
    for pending in folder.glob("*.new"):
        name = pending.name[:-4]
        if isinstance(hashes, dict) and hashes.get(name) == _sha(pending):
            os.replace(pending, folder / name)
        else:
            pending.unlink(missing_ok=True)  # a write that never committed
    fsync_dir(folder)


def _sha(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except OSError:
        return None


def _versions() -> dict[str, str]:
    import importlib.metadata as md
    import platform
    out = {"python": platform.python_version()}
    for pkg in ("deepscope", "torch", "numpy", "captum", "shap", "safetensors"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def save_run(run: Run, path: str | os.PathLike, *, resume: dict[str, Any] | None = None) -> Path:
    """Write ``run`` to the folder ``path`` atomically; returns the folder.

    ``resume`` is the trainer's resume state: ``{"tensors": {name: Tensor}, "json": {...}}``.
    """
    folder = Path(path)
    if run.card is None:
        raise InvalidInputError(
            "save_run needs a run with a model card: a run folder rebuilds the architecture by "
            "name. Train a zoo model (zoo.list_models()) or attach a zoo card to the module.")
    state = {k: v.detach().to("cpu").contiguous() for k, v in run.model.state_dict().items()}
    files = {"model.safetensors": st_save(state)}
    if run.vocab is not None:
        files["vocab.json"] = dumps(run.vocab.to_dict(), indent=None).encode("utf-8")
    if run.tokenizer is not None:
        from zoo.data.text import tokenizer_files
        files.update(tokenizer_files(run.tokenizer))
    if resume is not None:
        files["resume.safetensors"] = st_save(
            {k: v.detach().to("cpu").contiguous() for k, v in resume["tensors"].items()})
    history = run.history.to_dict() if hasattr(run.history, "to_dict") else run.history
    manifest = {
        "format": RUN_FORMAT,
        "version": RUN_VERSION,
        "model": {"name": run.model_name, "kwargs": run.model_kwargs},
        "card": run.card.to_dict(),
        "dataset": ({"name": run.dataset_name, "options": run.dataset_options}
                    if run.dataset_name else None),
        "preset": run.preset,
        "class_names": list(run.card.class_names),
        "config": run.config.to_dict(),
        "epoch": run.epoch,
        "metrics": run.metrics,
        "history": history,
        "versions": run.versions or _versions(),
        "resume": resume["json"] if resume is not None else None,
    }
    _commit(folder, files, encode(manifest, always=True))  # non-finite metrics: null + pointer
    run.path = folder
    return folder


# ----------------------------------------------------------------------------- reading
def _bad(folder: Path, what: str) -> CorruptRunError:
    return CorruptRunError(f"Run folder {str(folder)!r}: {what} {_FIX}")


def _field(d: Any, key: str, kind: type | tuple[type, ...], folder: Path, where: str = "") -> Any:
    name = f"{where}{key}"
    if not isinstance(d, dict) or key not in d:
        raise _bad(folder, f"run.json has no field {name!r}; it is not a deepscope run or was edited.")
    value = d[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise _bad(folder, f"run.json field {name!r} must be {want}; got "
                           f"{type(value).__name__}.")
    return value


def _check_folder(folder: Path) -> None:
    if not folder.exists():
        raise DataNotFoundError(
            f"Run folder {str(folder)!r} does not exist. Train one with "
            f"`deepscope train PRESET --out {folder}` or pass an existing run folder.")
    if not folder.is_dir():
        raise CorruptRunError(f"{str(folder)!r} is a file, not a run folder; pass the folder that "
                              f"holds model.safetensors and run.json.")
    for p in folder.iterdir():
        if p.suffix.lower() in UNSAFE_SUFFIXES:
            raise UnsafeFileError(
                f"Run folder {str(folder)!r} contains {p.name!r}: deepscope never loads pickled or "
                f"torch.save files because loading them can run arbitrary code. A run folder holds "
                f"only safetensors and JSON; remove the file or use another folder.")


def _read_verified(folder: Path, name: str, expected: str) -> bytes:
    path = folder / name
    # the file, its pending copy, then the file again: a commit renaming ``.new`` into place
    # between the first two reads is caught by the third
    candidates = [path, folder / f"{name}.new", path]
    for cand in candidates:
        try:
            data = cand.read_bytes()
        except OSError:
            continue
        if hashlib.sha256(data).hexdigest() == expected:
            return data  # readers never rename: the next writer rolls the commit forward
    if not path.exists():
        raise _bad(folder, f"{name!r} is missing but run.json lists it.")
    raise _bad(folder, f"{name!r} does not match the SHA-256 recorded in run.json (expected "
                       f"{expected[:12]}..., found {sha256_file(path)[:12]}...): "
                       f"it was modified, truncated or corrupted after it was written.")


def _load_tensors(folder: Path, name: str, data: bytes) -> dict[str, torch.Tensor]:
    looks_safetensors = len(data) >= 9 and data[8:9] == b"{"  # u64 header length, then JSON
    if not looks_safetensors and (data[:1] == b"\x80" or data[:2] == b"PK"):
        raise UnsafeFileError(
            f"Run folder {str(folder)!r}: {name!r} is a pickle / torch.save archive, not safetensors. "
            f"deepscope never unpickles files (that can run arbitrary code). {_FIX}")
    try:
        return st_load(data)
    except (SafetensorError, ValueError, RuntimeError, OSError) as exc:
        raise _bad(folder, f"{name!r} is not a valid safetensors file ({exc}).") from None


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate ``run.json`` of a run folder (no weights loaded)."""
    folder = Path(path)
    _check_folder(folder)
    mpath = folder / "run.json"
    if not mpath.exists():
        pending = [p.name for p in folder.glob("*.new")]
        extra = " A save was interrupted before its first commit." if pending else ""
        raise _bad(folder, f"run.json is missing, so this is not a complete run.{extra}")
    try:
        manifest = loads(mpath.read_bytes(), what="run.json")
    except CorruptRunError as exc:
        raise _bad(folder, f"run.json is not valid UTF-8 JSON ({exc}).") from None
    if isinstance(manifest, dict):  # folders written before the codec have no list: still fine
        manifest = decode(manifest, what=f"Run folder {str(folder)!r}: run.json")
    if _field(manifest, "format", str, folder) != RUN_FORMAT:
        raise _bad(folder, f"run.json format is {manifest['format']!r}, expected {RUN_FORMAT!r}.")
    version = _field(manifest, "version", int, folder)
    if version > RUN_VERSION:
        raise CorruptRunError(f"Run folder {str(folder)!r} was written by a newer deepscope (run "
                              f"format {version} > {RUN_VERSION}); upgrade deepscope to read it.")
    model = _field(manifest, "model", dict, folder)
    _field(model, "name", str, folder, "model.")
    _field(model, "kwargs", dict, folder, "model.")
    files = _field(manifest, "files", dict, folder)
    for name, sha in files.items():
        if not _SAFE_NAME.match(str(name)) or not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)):
            raise _bad(folder, f"run.json lists an invalid file entry {str(name)[:60]!r}.")
    if "model.safetensors" not in files:
        raise _bad(folder, "run.json does not list model.safetensors.")
    _field(manifest, "card", dict, folder)
    _field(manifest, "config", dict, folder)
    _field(manifest, "metrics", dict, folder)
    _field(manifest, "epoch", int, folder)
    return manifest


_T = TypeVar("_T")


def _consistent(folder: Path, read: Callable[[], _T], attempts: int = 5) -> _T:
    """``read()``, again while a writer commits meanwhile (``run.json`` changed under us).

    Readers take no lock: a file that matches neither the ``run.json`` read first nor its
    pending ``.new`` copy means a newer commit landed mid-read, so the read starts over.
    """
    for attempt in range(attempts):
        before = _sha(folder / "run.json")
        try:
            return read()
        except CorruptRunError:
            if attempt == attempts - 1 or _sha(folder / "run.json") == before:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def load_run(path: str | os.PathLike, device: str | torch.device | None = None) -> Run:
    """Load a run folder written by :func:`zoo.train`; the model comes back in eval mode.

    Nothing is unpickled: weights are safetensors, everything else JSON, and every file is checked
    against the SHA-256 recorded in ``run.json``. A partial, tampered or hostile folder raises a
    :class:`explain.CorruptRunError` (or :class:`explain.UnsafeFileError`) naming the file.
    Reading needs no lock: a run being written is read as it was before or after the commit.
    """
    folder = Path(path)
    return _consistent(folder, lambda: _load_once(folder, device))


def _load_once(folder: Path, device: str | torch.device | None) -> Run:
    from zoo.registry import create_model

    manifest = read_manifest(folder)
    files = manifest["files"]
    weights = _load_tensors(folder, "model.safetensors",
                            _read_verified(folder, "model.safetensors", files["model.safetensors"]))
    try:
        card = ModelCard.from_dict(manifest["card"])
        config = TrainConfig.from_dict(manifest["config"])
    except (ValueError, TypeError) as exc:
        raise _bad(folder, f"run.json has an invalid card or config ({exc}).") from None
    name, kwargs = manifest["model"]["name"], manifest["model"]["kwargs"]
    try:
        model = create_model(name, **kwargs)
    except UnknownNameError as exc:
        raise _bad(folder, f"run.json names an unknown model ({exc}).") from None
    except (ValueError, TypeError) as exc:
        raise _bad(folder, f"run.json has invalid model kwargs for {name!r} ({exc}).") from None
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0][:300]
        raise _bad(folder, f"model.safetensors does not fit model {name!r} ({first}).") from None
    dev = torch.device(device) if device is not None else torch.device("cpu")
    model.to(dev).eval()
    vocab = None
    if "vocab.json" in files:
        raw = _read_verified(folder, "vocab.json", files["vocab.json"])
        try:
            from zoo.data.text import Vocabulary
            vocab = Vocabulary.from_dict(loads(raw, what="vocab.json"))
        except (CorruptRunError, ValueError, KeyError, TypeError) as exc:
            raise _bad(folder, f"vocab.json is invalid ({exc}).") from None
    tokenizer = _load_tokenizer(folder, files)
    history = manifest.get("history")
    if isinstance(history, dict):
        try:
            from explain.monitor import History
            history = History.from_dict(history)
        except ImportError:  # pragma: no cover - monitor not installed
            pass
        except (ValueError, TypeError, KeyError) as exc:
            raise _bad(folder, f"run.json has an invalid history ({exc}).") from None
    dataset = manifest.get("dataset") or None
    return Run(model=model, card=card, config=config, history=history,
               metrics=manifest["metrics"], model_name=name, model_kwargs=kwargs,
               dataset_name=dataset["name"] if isinstance(dataset, dict) else None,
               dataset_options=dataset.get("options", {}) if isinstance(dataset, dict) else {},
               preset=manifest.get("preset"), path=folder, vocab=vocab, tokenizer=tokenizer,
               epoch=manifest["epoch"], versions=manifest.get("versions") or {})


def _load_tokenizer(folder: Path, files: dict[str, str]) -> Any:
    """The tokenizer saved in the folder (its files checked against run.json), or ``None``."""
    names = [n for n in TOKENIZER_FILES if n in files]
    if not names:
        return None
    raw = {n: _read_verified(folder, n, files[n]) for n in names}
    from zoo.data.text import tokenizer_from_files
    try:
        return tokenizer_from_files(raw)
    except (ValueError, OSError, TypeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise _bad(folder, f"the tokenizer files {names} are invalid ({first}).") from None


def read_resume_state(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The JSON and tensor parts of a run's resume state (raises if the run has none)."""
    folder = Path(path)
    return _consistent(folder, lambda: _resume_once(folder))


def _resume_once(folder: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    manifest = read_manifest(folder)
    if "resume.safetensors" not in manifest["files"] or not isinstance(manifest.get("resume"), dict):
        raise _bad(folder, "it has no resume state (it finished, or was saved without one), so "
                           "it cannot be resumed. Train without --resume to start afresh.")
    raw = _read_verified(folder, "resume.safetensors", manifest["files"]["resume.safetensors"])
    return manifest["resume"], _load_tensors(folder, "resume.safetensors", raw)
