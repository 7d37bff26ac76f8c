"""Small pieces every page shares: the error guard, the selected run, findings, sample previews."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import streamlit as st

import explain
from dashboard import _state as S

__all__ = ["guard", "page_header", "run_picker", "selected_run", "show_findings", "SEVERITY_ICON", "SEVERITY_MARK",
           "OK", "WRONG", "preview", "decode_tokens",
           "class_name", "md_escape"]

_log = logging.getLogger("deepscope.dashboard")

# Markdown icons (Material Symbols ship with Streamlit, so they render without emoji fonts)
SEVERITY_ICON = {"pass": ":green[:material/check_circle:]", "info": ":blue[:material/info:]",
                 "warn": ":orange[:material/warning:]", "fail": ":red[:material/cancel:]",
                 "error": ":red[:material/error:]"}
# Plain symbols for places without Markdown (table cells, metrics)
SEVERITY_MARK = {"pass": "✔", "info": "ℹ", "warn": "⚠", "fail": "✖", "error": "‼"}
OK, WRONG = ":green[:material/check:]", ":red[:material/close:]"


@contextlib.contextmanager
def guard(what: str) -> Iterator[None]:
    """Show a failure inside the block as one short ``st.error`` line, never a traceback."""
    try:
        yield
    except explain.DeepscopeError as exc:
        st.error(f"Could not {what}: {exc}")
    except Exception as exc:  # the page must survive anything a model or file throws
        _log.exception("dashboard: could not %s", what)  # full traceback to the server log only
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        st.error(f"Could not {what}: {type(exc).__name__}: {first}")


def page_header(title: str, caption: str) -> None:
    """Page config, title and one-line caption of a page.

    ``set_page_config`` is repeated here (not only in ``app.py``) so a page keeps the wide layout
    when it runs on its own (e.g. in an ``AppTest``).
    """
    st.set_page_config(page_title=f"{title} · deepscope", page_icon="🔬", layout="wide")
    st.title(title)
    st.caption(caption)


def run_picker() -> str | None:
    """The sidebar's run selector, drawn by every page; returns the chosen run id or ``None``.

    The choice lives in ``st.session_state["run_id"]`` (not in the widget), so it survives page
    switches, and a page can select a run (after training or an upload) by setting it.
    """
    ids = [ref.id for ref in S.list_runs()]
    st.sidebar.markdown("### :material/biotech: deepscope")
    if not ids:
        st.session_state["run_id"] = None
        st.sidebar.caption(f"No runs in `{S.runs_root()}` yet.")
        return None
    if st.session_state.get("run_id") not in ids:
        st.session_state["run_id"] = ids[0]

    def _picked() -> None:
        st.session_state["run_id"] = st.session_state["_run_picker"]

    st.session_state["_run_picker"] = st.session_state["run_id"]
    st.sidebar.selectbox("Run", ids, key="_run_picker", on_change=_picked,
                         help="Run folders found in the runs folder (and runs you uploaded).")
    st.sidebar.caption(f"Runs folder: `{S.runs_root()}`")
    return st.session_state["run_id"]


def selected_run() -> str | None:
    """:func:`run_picker`, plus a hint on the page when there is no run yet."""
    run_id = run_picker()
    if not run_id:
        st.info("No run yet. Train a preset or upload a run on the **Runs** page.")
    return run_id


def show_findings(found: list[dict[str, Any]], *, expanded_from: str = "warn") -> None:
    """One expander per finding, worst first: summary, remedy and the evidence as JSON."""
    rank = {"pass": 0, "info": 1, "warn": 2, "fail": 3, "error": 4}
    for f in found:
        sev = f["severity"]
        label = (f"{SEVERITY_ICON.get(sev, '')} {sev.upper()} · {md_escape(f['check'])} — "
                 f"{md_escape(f['summary'])}")
        with st.expander(label, expanded=rank.get(sev, 0) >= rank[expanded_from]):
            if f.get("remedy"):
                st.markdown("**What to do:** " + md_escape(f["remedy"]))
            else:
                st.caption("Nothing to do.")
            evidence = {k: v for k, v in (f.get("evidence") or {}).items()
                        if not isinstance(v, list) or len(v) <= 50}
            if evidence:
                st.json(evidence, expanded=False)


def md_escape(text: str) -> str:
    """Escape Markdown specials in user- or data-derived text shown with st.markdown (which
    never renders raw HTML here: no ``unsafe_allow_html`` on these strings)."""
    out = str(text)
    for ch in "\\`*_{}[]()#+!|<>$~":
        out = out.replace(ch, "\\" + ch)
    return out


def class_name(names: tuple[str, ...] | list[str], index: int) -> str:
    """``names[index]``, or the index as text when the name is missing."""
    return str(names[index]) if 0 <= index < len(names) else str(index)


def decode_tokens(vocab: Any, ids: Any) -> list[str]:
    """Token strings of the non-padding ids (0 = padding) using the data set's vocabulary."""
    ids = [int(i) for i in np.asarray(ids).reshape(-1) if int(i) != 0]
    itos = getattr(vocab, "itos", None)  # zoo.data.text.Vocabulary: id -> token
    if itos is None:
        return [str(i) for i in ids]
    return [str(itos[i]) if 0 <= i < len(itos) else "<unk>" for i in ids]


def _to_unit(a: np.ndarray) -> np.ndarray:
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    return np.zeros_like(a, dtype=np.float32) if hi - lo < 1e-12 else ((a - lo) / (hi - lo))


def preview(x: Any, modality: str, *, vocab: Any = None, width: int = 96,
            feature_names: Any = None) -> None:
    """Draw one sample small and fast: images as pictures, sequences as a time x feature strip,
    text as its tokens, tabular rows as their leading values."""
    a = np.asarray(x)
    if modality == "image":
        img = _to_unit(a.astype(np.float32))
        img = img[0] if img.shape[0] == 1 else np.transpose(img[:3], (1, 2, 0))
        st.image(img, width=width, clamp=True)
    elif modality == "sequence":
        frames = a.astype(np.float32)
        keep = np.flatnonzero(np.abs(frames).sum(axis=1) > 0)
        frames = frames[: keep[-1] + 1] if len(keep) else frames[:1]
        strip = _to_unit(frames.T)  # [features, time]
        strip = np.repeat(np.repeat(strip, max(1, 48 // max(1, strip.shape[0])), axis=0),
                          max(1, 96 // max(1, strip.shape[1])), axis=1)
        st.image(strip, width=width, clamp=True)
        st.caption(f"{len(frames)} frames × {a.shape[1]} features")
    elif modality == "text":
        words = decode_tokens(vocab, a)
        text = " ".join(words[:40]) + (" …" if len(words) > 40 else "")
        st.caption(md_escape(text) or "(empty)")
    else:
        names = list(feature_names) if feature_names is not None else [f"f{i}" for i in range(len(a))]
        shown = ", ".join(f"{n}={v:.2g}" for n, v in list(zip(names, a.tolist()))[:6])
        st.caption(md_escape(shown + (" …" if len(a) > 6 else "")))
