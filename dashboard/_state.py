"""The dashboard's data layer: which run folders exist, loading them safely, cached results.

Only run folders that are direct children of the runs folder (or uploads this module saved
itself) are ever loaded; a run is addressed by its folder *name*, never by a path from the user.
Models are cached with ``st.cache_resource``; computed results with ``st.cache_data``, keyed by
the run id plus a stamp of its files, so retraining into the same folder refreshes everything.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
import torch

import explain
import zoo

__all__ = [
    "RUNS_ENV", "RUN_FILES", "RunRef", "runs_root", "list_runs", "resolve_run", "get_run",
    "stamp_of", "overview", "findings", "predictions", "save_upload", "new_run_folder",
    "upload_root", "prune_uploads",
]

RUNS_ENV = "DEEPSCOPE_RUNS"
RUN_FILES = ("model.safetensors", "run.json")
_UPLOAD_PREFIX = "upload-"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_MAX_JSON_BYTES = 20 * 1024 * 1024
UPLOAD_MAX_AGE_S = 24 * 3600  # an upload no session has listed for this long is removed
_BATCH = 512


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


@st.cache_resource(max_entries=8, show_spinner="Loading the run ...")
def _load(run_id: str, stamp: str) -> Any:
    run = zoo.load_run(resolve_run(run_id))
    run.model.eval()
    return run


def get_run(run_id: str) -> Any:
    """The :class:`zoo.Run` ``run_id`` (model in eval mode), loaded once per process."""
    return _load(run_id, stamp_of(run_id))


@st.cache_data(max_entries=64, show_spinner=False)
def findings(run_id: str, stamp: str) -> list[dict[str, Any]]:
    """``explain.diagnose(run.history, model=run.model)`` as dicts, worst first ([] without history)."""
    run = get_run(run_id)
    if run.history is None:
        return []
    found = explain.diagnose(run.history, model=run.model)
    found = sorted(found, key=lambda f: -explain.Severity(f.severity).rank)
    return [f.to_dict() for f in found]


@st.cache_data(max_entries=64, show_spinner=False)
def overview(run_id: str, stamp: str) -> dict[str, Any]:
    """One row of the Runs table: model, data, accuracy, epochs and the diagnosis at a glance."""
    run = get_run(run_id)
    found = findings(run_id, stamp)
    bad = [f for f in found if f["severity"] in ("warn", "fail", "error")]
    worst = found[0]["severity"] if found else ("pass" if run.history is not None else "info")
    acc = (run.metrics or {}).get("test_accuracy")
    return {
        "run": run_id,
        "model": run.model_name,
        "modality": run.card.modality.value,
        "data": run.dataset_name or "(user data)",
        "preset": run.preset or "",
        "test accuracy": float(acc) if isinstance(acc, (int, float)) else None,
        "epochs": int(run.epoch),
        "health": worst,
        "issues": (", ".join(f["check"] for f in bad) or "none") if run.history is not None
        else "no training history recorded",
    }


@st.cache_data(max_entries=16, show_spinner="Predicting the test set ...")
def predictions(run_id: str, stamp: str) -> dict[str, np.ndarray]:
    """Test-set probabilities: ``probs`` [N, classes], ``y`` [N], ``pred`` [N], ``conf`` [N]."""
    run = get_run(run_id)
    x, y = run.dataset.test.tensors
    model = run.model
    chunks = []
    with torch.no_grad():
        for start in range(0, len(x), _BATCH):
            chunks.append(torch.softmax(model(x[start:start + _BATCH]).float(), dim=-1))
    probs = torch.cat(chunks).numpy() if chunks else np.zeros((0, run.card.num_classes), "f4")
    pred = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=np.int64)
    conf = probs.max(axis=1) if len(probs) else np.zeros(0, dtype=np.float32)
    return {"probs": probs, "y": y.numpy().astype(np.int64), "pred": pred.astype(np.int64),
            "conf": conf}


def new_run_folder(name: str) -> Path:
    """A fresh folder name under the runs folder: ``name``, else ``name-2``, ``name-3``, ..."""
    if not _NAME.match(name):
        raise explain.InvalidInputError(
            f"The run name must be letters, digits, '.', '_' or '-' (at most 128). "
            f"Got {name!r} instead. Pick a plain name such as 'mlp-digits'.")
    root = runs_root()
    root.mkdir(parents=True, exist_ok=True)
    candidate, n = root / name, 1
    while candidate.exists():
        n += 1
        candidate = root / f"{name}-{n}"
    return candidate


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
