"""Small pieces every page shares: the error guard, the selected run, findings, sample previews."""

from __future__ import annotations

import contextlib
import html
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import streamlit as st

import explain

__all__ = ["guard", "selected_run", "show_findings", "SEVERITY_ICON", "preview", "decode_tokens",
           "class_name", "highlighted_tokens"]

_log = logging.getLogger("deepscope.dashboard")

SEVERITY_ICON = {"pass": "✅", "info": "ℹ️", "warn": "⚠️", "fail": "❌", "error": "🛑"}


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


def selected_run() -> str | None:
    """The run picked in the sidebar; shows a hint and returns ``None`` when there is none."""
    run_id = st.session_state.get("run_id")
    if not run_id:
        st.info("No run yet. Train a preset or upload a run on the **Runs** page.")
        return None
    return run_id


def show_findings(found: list[dict[str, Any]], *, expanded_from: str = "warn") -> None:
    """One expander per finding, worst first: summary, remedy and the evidence as JSON."""
    rank = {"pass": 0, "info": 1, "warn": 2, "fail": 3, "error": 4}
    for f in found:
        sev = f["severity"]
        label = f"{SEVERITY_ICON.get(sev, '')} {sev.upper()} · {f['check']} — {f['summary']}"
        with st.expander(label, expanded=rank.get(sev, 0) >= rank[expanded_from]):
            if f.get("remedy"):
                st.markdown("**What to do:** " + _md_escape(f["remedy"]))
            else:
                st.caption("Nothing to do.")
            evidence = {k: v for k, v in (f.get("evidence") or {}).items()
                        if not isinstance(v, list) or len(v) <= 50}
            if evidence:
                st.json(evidence, expanded=False)


def _md_escape(text: str) -> str:
    """Escape Markdown/HTML specials in user- or data-derived text shown with st.markdown."""
    out = html.escape(str(text), quote=False)
    for ch in "\\`*_{}[]()#+!|<>$~":
        out = out.replace(ch, "\\" + ch)
    return out


def class_name(names: tuple[str, ...] | list[str], index: int) -> str:
    """``names[index]``, or the index as text when the name is missing."""
    return str(names[index]) if 0 <= index < len(names) else str(index)


def decode_tokens(vocab: Any, ids: Any) -> list[str]:
    """Token strings of the non-padding ids (0 = padding) using the data set's vocabulary."""
    ids = [int(i) for i in np.asarray(ids).reshape(-1) if int(i) != 0]
    for attr in ("decode_tokens", "lookup_tokens", "to_tokens"):
        fn = getattr(vocab, attr, None)
        if callable(fn):
            return [str(t) for t in fn(ids)]
    itos = getattr(vocab, "itos", None) or getattr(vocab, "tokens", None)
    if itos is not None:
        return [str(itos[i]) if 0 <= i < len(itos) else "<unk>" for i in ids]
    return [str(i) for i in ids]


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
        st.caption(_md_escape(text) or "(empty)")
    else:
        names = list(feature_names) if feature_names is not None else [f"f{i}" for i in range(len(a))]
        shown = ", ".join(f"{n}={v:.2g}" for n, v in list(zip(names, a.tolist()))[:6])
        st.caption(_md_escape(shown + (" …" if len(a) > 6 else "")))


def highlighted_tokens(tokens: list[str], scores: Any) -> str:
    """HTML of tokens shaded by their score (red = towards the class, blue = against).

    Every token is ``html.escape``-d, so the result is safe for ``unsafe_allow_html=True``.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)[: len(tokens)]
    scale = float(np.max(np.abs(s))) if len(s) else 0.0
    spans = []
    for tok, v in zip(tokens, s):
        a = 0.0 if scale == 0 else min(1.0, abs(float(v)) / scale)
        rgb = "214,39,40" if v >= 0 else "31,119,180"
        spans.append(f'<span title="{float(v):+.3f}" style="background: rgba({rgb},{a:.2f}); '
                     f'padding: 1px 3px; margin: 1px; border-radius: 3px">{html.escape(tok)}</span>')
    return '<div style="line-height: 2">' + " ".join(spans) + "</div>"
