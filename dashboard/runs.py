"""Finding runs: which run folders exist, where a run id points, new folders, uploads.

Only run folders that are direct children of the runs folder (or uploads this module saved
itself) are ever loaded; a run is addressed by its folder *name*, never by a path from the user.
:func:`stamp_of` changes whenever a run's files change; :mod:`dashboard.cache` keys every cached
result by run id plus stamp, so retraining into the same folder refreshes everything.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

import explain
import zoo
from explain._core.outputs import unwrap

__all__ = [
    "RUNS_ENV", "RUN_FILES", "UPLOAD_MAX_AGE_S", "RunRef", "runs_root", "list_runs",
    "resolve_run", "stamp_of", "vocab_of", "tokenizer_of", "clip_of", "save_upload", "new_run_folder", "upload_root", "prune_uploads",
]

RUNS_ENV = "DEEPSCOPE_RUNS"
RUN_FILES = ("model.safetensors", "run.json")
_UPLOAD_PREFIX = "upload-"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_MAX_JSON_BYTES = 20 * 1024 * 1024
UPLOAD_MAX_AGE_S = 24 * 3600  # an upload no session has listed for this long is removed


@dataclass(frozen=True)
class RunRef:
    """A run the dashboard may load: its id (folder name) and its resolved folder."""

    id: str
    path: Path


def runs_root() -> Path:
    """The runs folder: ``$DEEPSCOPE_RUNS`` (set by ``deepscope dashboard``) or ``./runs``."""
    return Path(os.environ.get(RUNS_ENV) or "runs").expanduser().resolve()


def upload_root() -> Path:
    """Where uploaded runs live: one fresh folder each, under the system temp folder."""
    return Path(tempfile.gettempdir()).resolve() / "deepscope-uploads"


def _is_run(folder: Path) -> bool:
    return folder.is_dir() and all((folder / f).is_file() for f in RUN_FILES)


def list_runs(root: Path | None = None) -> list[RunRef]:
    """Every run folder directly inside ``root``, sorted by name, plus saved uploads."""
    root = runs_root() if root is None else root
    refs: list[RunRef] = []
    if root.is_dir():
        for child in sorted(root.iterdir(), key=lambda p: p.name):
            if _NAME.match(child.name) and not child.is_symlink() and _is_run(child):
                refs.append(RunRef(child.name, child.resolve()))
    for run_id in sorted(st.session_state.get("_uploads", [])):
        folder = upload_root() / run_id
        if _is_run(folder):
            refs.append(RunRef(run_id, folder))
            try:
                os.utime(folder)  # in use: keeps it from being pruned
            except OSError:
                pass
    return refs


def prune_uploads(max_age_s: float = UPLOAD_MAX_AGE_S, now: float | None = None) -> list[str]:
    """Remove uploaded runs no session has listed for ``max_age_s`` seconds, and leftovers of
    failed uploads; return the removed folder names.

    Uploads are copies the user still has; each session touches its own on every page, so only
    abandoned ones age. Only folders this module creates (``upload-*``, ``tmp-*``) are removed.
    """
    root = upload_root()
    if not root.is_dir():
        return []
    now = time.time() if now is None else now
    removed = []
    for child in root.iterdir():
        if child.is_symlink() or not child.is_dir() \
                or not child.name.startswith((_UPLOAD_PREFIX, "tmp-")):
            continue
        try:
            age = now - child.stat().st_mtime
        except OSError:
            continue
        if age > max_age_s:
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child.name)
    return sorted(removed)


def resolve_run(run_id: str) -> Path:
    """The folder of run ``run_id``, which must be one of :func:`list_runs` (never a user path)."""
    for ref in list_runs():
        if ref.id == run_id:
            return ref.path
    known = [r.id for r in list_runs()]
    raise explain.UnknownNameError(
        f"Unknown run {str(run_id)!r}: the dashboard only opens run folders inside "
        f"{str(runs_root())!r}. Known runs: {', '.join(map(repr, known)) or 'none'}. "
        "Train one on the Runs page or pass --runs to `deepscope dashboard`.")


def stamp_of(run_id: str) -> str:
    """A value that changes whenever the run's files change (cache key)."""
    folder = resolve_run(run_id)
    parts = []
    for name in RUN_FILES:
        st_ = (folder / name).stat()
        parts.append(f"{st_.st_mtime_ns}:{st_.st_size}")
    return f"{folder}|{'|'.join(parts)}"


def vocab_of(run: Any) -> Any | None:
    """The vocabulary of a text run (saved with the run, else its data set's), or ``None``."""
    vocab = getattr(run, "vocab", None)
    if vocab is None:
        vocab = getattr(getattr(run, "dataset", None), "vocab", None)
    return vocab


def clip_of(run: Any, split: str, index: int) -> bytes | None:
    """Sample ``index`` of ``split`` as a WAV file for ``st.audio``, for runs whose data set
    keeps its sounds (a :class:`zoo.data.spoken_digits.AudioBundle`); ``None`` otherwise."""
    from zoo.data.spoken_digits import AudioBundle

    bundle = getattr(run, "dataset", None)
    if not isinstance(bundle, AudioBundle) or split not in bundle.waveforms:
        return None
    return bundle.wav_bytes(split, index)


def tokenizer_of(run: Any) -> Any | None:
    """The tokenizer a text run reads: the one saved in its run folder (``run.tokenizer``, e.g.
    MiniLM's WordPiece tokenizer), else -- runs saved before run folders kept it -- the
    ``load_tokenizer()`` of its model's module in ``zoo.models``, else ``None`` (the run's
    vocabulary is used). Only an already imported ``zoo.models`` module is consulted, never a
    name from a run file."""
    saved = getattr(run, "tokenizer", None)
    if saved is not None:
        return saved
    module_name = type(unwrap(run.model)).__module__
    module = sys.modules.get(module_name) if module_name.startswith("zoo.models.") else None
    load = getattr(module, "load_tokenizer", None)
    return load() if callable(load) else None


def new_run_folder(name: str) -> Path:
    """A fresh folder name under the runs folder: ``name``, else ``name-2``, ``name-3``, ..."""
    if not _NAME.match(name):
        raise explain.InvalidInputError(
            f"The run name must be letters, digits, '.', '_' or '-' (at most 128). "
            f"Got {name!r} instead. Pick a plain name such as 'mlp-digits'.")
    from zoo.writer import fresh_run_folder

    return fresh_run_folder(runs_root(), name)  # created by the trainer when it writes


def _check_safetensors(data: bytes) -> None:
    # safetensors layout: 8-byte little-endian header length, then a JSON header
    ok = len(data) > 8
    if ok:
        size = int.from_bytes(data[:8], "little")
        ok = 2 <= size <= len(data) - 8 and data[8:9] == b"{"
    if not ok:
        raise explain.UnsafeFileError(
            "The uploaded model must be a safetensors file (8-byte header length, then JSON). "
            "Got something else (a pickle, .pt or .pkl file is refused). "
            "Upload the model.safetensors of a deepscope run folder.")


def save_upload(model_bytes: bytes, run_json_bytes: bytes) -> str:
    """Save an uploaded run into a fresh temp folder under FIXED names, check it, return its id.

    Only the bytes are used (never the uploaded file names). The folder is then loaded with
    :func:`zoo.load_run` like any run; if that fails the folder is removed and the error raised.
    Uploads abandoned for a day are pruned first (:func:`prune_uploads`).
    """
    _check_safetensors(model_bytes)
    if len(run_json_bytes) > _MAX_JSON_BYTES:
        raise explain.InvalidInputError(
            f"The uploaded run.json must be at most {_MAX_JSON_BYTES // 2**20} MB. "
            f"Got {len(run_json_bytes) / 2**20:.1f} MB instead. Upload the run.json of a run folder.")
    try:
        json.loads(run_json_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise explain.CorruptRunError(
            f"The uploaded run.json must be JSON text. Got invalid JSON ({exc.__class__.__name__}). "
            "Upload the run.json of a deepscope run folder.") from None
    run_id = f"{_UPLOAD_PREFIX}{uuid.uuid4().hex[:12]}"
    prune_uploads()
    root = upload_root()
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="tmp-", dir=root))
    try:
        (folder / "model.safetensors").write_bytes(model_bytes)
        (folder / "run.json").write_bytes(run_json_bytes)
        zoo.load_run(folder)  # the same checks as any run folder
        folder.rename(root / run_id)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    st.session_state.setdefault("_uploads", []).append(run_id)
    return run_id
