"""Rendering helpers every page shares: the error guard, the run picker, severity and verdict
badges, findings, sample previews, attributions, trust verdicts and attention maps.

Widgets draw values the library produced (:class:`explain.Finding`, :class:`explain.Quality`,
:class:`explain.Attribution`) with figures from :mod:`explain.figures`; the look of a grade comes
from :class:`explain.Severity` (``.material``, ``.mark``, ``.label``), the grade of a trust
verdict from :attr:`explain.Verdict.severity`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

import explain
from dashboard import cache as C
from dashboard import runs as R
from explain import Severity, Verdict
from explain._core.audio import read_wav
from explain._core.tensors import decode_tokens
from explain._core.text import escape_markdown
from explain.attribution.hf_inputs import merge_word_pieces
from explain.figures import attention as FAT
from explain.figures import attribution as FA
from explain.figures import audio as FAU
from explain.report import Table

__all__ = ["OK", "WRONG", "escape_markdown", "guard", "page_header", "run_picker",
           "selected_run", "severity_badge", "severity_text", "verdict_badge", "show_findings",
           "show_table", "class_name", "preview", "clip_player", "token_view", "attribution_view",
           "trust_view", "has_attention", "attention_view"]

_log = logging.getLogger("deepscope.dashboard")

#: Markdown marks of a right / wrong prediction (Material Symbols ship with Streamlit).
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
    ids = [ref.id for ref in R.list_runs()]
    st.sidebar.markdown("### :material/biotech: deepscope")
    if not ids:
        st.session_state["run_id"] = None
        st.sidebar.caption(f"No runs in `{R.runs_root()}` yet.")
        return None
    if st.session_state.get("run_id") not in ids:
        st.session_state["run_id"] = ids[0]

    def _picked() -> None:
        st.session_state["run_id"] = st.session_state["_run_picker"]

    st.session_state["_run_picker"] = st.session_state["run_id"]
    st.sidebar.selectbox("Run", ids, key="_run_picker", on_change=_picked,
                         help="Run folders found in the runs folder (and runs you uploaded).")
    st.sidebar.caption(f"Runs folder: `{R.runs_root()}`")
    return st.session_state["run_id"]


def selected_run() -> str | None:
    """:func:`run_picker`, plus a hint on the page when there is no run yet."""
    run_id = run_picker()
    if not run_id:
        st.info("No run yet. Train a preset or upload a run on the **Runs** page.")
    return run_id


# ----------------------------------------------------------------------------- grades
def severity_badge(severity: Severity) -> str:
    """Markdown for a grade: its Material icon and label, e.g. ``":orange[...] WARN"``."""
    return f"{severity.material} {severity.label}"


def severity_text(severity: Severity) -> str:
    """Plain text for a grade where Markdown does not render (table cells, metrics): ``"⚠ warn"``."""
    return f"{severity.mark} {severity.value}"


def verdict_badge(verdict: Verdict) -> str:
    """Markdown for a trust verdict: the icon of its severity and its label in bold."""
    return f"{verdict.severity.material} **{escape_markdown(verdict.label)}**"


def show_findings(found: Iterable[explain.Finding], *,
                  expanded_from: Severity = Severity.WARN) -> None:
    """One expander per finding, worst first: summary, remedy and the evidence as JSON."""
    for f in found:
        label = (f"{severity_badge(f.severity)} · {escape_markdown(f.check)} — "
                 f"{escape_markdown(f.summary)}")
        with st.expander(label, expanded=f.severity >= expanded_from):
            if f.remedy:
                st.markdown("**What to do:** " + escape_markdown(f.remedy))
            else:
                st.caption("Nothing to do.")
            evidence = {k: v for k, v in f.evidence.items()
                        if not isinstance(v, list) or len(v) <= 50}
            if evidence:
                st.json(evidence, expanded=False)


# ----------------------------------------------------------------------------- samples
def show_table(table: Table) -> None:
    """One of the report's tables (:class:`explain.report.Table`): its lead sentence, then the rows."""
    st.markdown(escape_markdown(table.lead))
    if table.rows:
        st.dataframe(pd.DataFrame(list(table.rows), columns=list(table.header)),
                     hide_index=True, use_container_width=True)


def class_name(names: tuple[str, ...] | list[str], index: int) -> str:
    """``names[index]``, or the index as text when the name is missing."""
    return str(names[index]) if 0 <= index < len(names) else str(index)


def _to_unit(a: np.ndarray) -> np.ndarray:
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    return np.zeros_like(a, dtype=np.float32) if hi - lo < 1e-12 else ((a - lo) / (hi - lo))


def _sequence_strip(a: np.ndarray) -> tuple[np.ndarray, int]:
    frames = a.astype(np.float32)
    keep = np.flatnonzero(np.abs(frames).sum(axis=1) > 0)
    frames = frames[: keep[-1] + 1] if len(keep) else frames[:1]
    strip = _to_unit(frames.T)  # [features, time]
    strip = np.repeat(np.repeat(strip, max(1, 48 // max(1, strip.shape[0])), axis=0),
                      max(1, 96 // max(1, strip.shape[1])), axis=1)
    return strip, len(frames)


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
        strip, frames = _sequence_strip(a)
        st.image(strip, width=width, clamp=True)
        st.caption(f"{frames} frames × {a.shape[1]} features")
    elif modality == "audio":                       # low mel bands at the bottom
        st.image(_to_unit(FAU.time_mel(a))[::-1].astype(np.float32), width=width, clamp=True)
    elif modality == "text":
        words = decode_tokens(a.reshape(-1).tolist(), vocab, skip_padding=True)
        text = " ".join(words[:40]) + (" …" if len(words) > 40 else "")
        st.caption(escape_markdown(text) or "(empty)")
    else:
        names = list(feature_names) if feature_names is not None else [f"f{i}" for i in range(len(a))]
        shown = ", ".join(f"{n}={v:.2g}" for n, v in list(zip(names, a.tolist()))[:6])
        st.caption(escape_markdown(shown + (" …" if len(a) > 6 else "")))


def clip_player(clip: bytes | None) -> None:
    """Play a sample's sound (WAV bytes) with ``st.audio``; nothing when there is none."""
    if clip is not None:
        st.audio(clip, format="audio/wav")


# ----------------------------------------------------------------------------- explanations
def token_view(tokens: Iterable[str], scores: Iterable[float]) -> None:
    """Tokens highlighted by their scores; word pieces (``play ##ing``) merged into words with
    their scores summed, and a caption saying so."""
    words = merge_word_pieces(list(tokens), [float(s) for s in scores])
    st.markdown(FA.token_html(list(words.words), list(words.scores)),
                unsafe_allow_html=True)  # token_html escapes every token
    if words.merged:
        st.caption(escape_markdown(words.note[0].upper() + words.note[1:] + "."))


def attribution_view(attr: explain.Attribution, run: Any, *, key: str,
                     clip: bytes | None = None) -> None:
    """Images as overlays, sequences as time x feature heatmaps, text as highlighted tokens,
    sounds as their waveform (from ``clip``, WAV bytes), attribution over the spectrogram and
    summed over the mel bands."""
    modality = run.card.modality.value
    x, values = attr.inputs[0], attr.values[0].detach()
    name = class_name(run.card.class_names, int(attr.target[0]))
    caption = f"red: evidence for {escape_markdown(name)}, blue: against"
    if modality == "text":
        keep = [j for j, i in enumerate(x.tolist()) if int(i) != 0]
        tokens = decode_tokens(x, R.vocab_of(run), skip_padding=True)
        token_view(tokens, values.numpy()[keep])
        st.caption(caption)
        return
    if modality == "image":
        fig = FA.image_overlay(x, values, class_name=name, method=attr.method, title=" ")
    elif modality == "audio":
        samples, rate = read_wav(clip) if clip is not None else (None, None)
        fig = FAU.audio_sample(x, values, samples=samples, sample_rate=rate, title=" ")
        fig.update_layout(height=460, margin={"t": 30, "b": 30, "l": 40, "r": 10})
        st.plotly_chart(fig, key=key)
        st.caption(caption)
        return
    elif modality == "sequence":
        real = np.flatnonzero(np.abs(np.asarray(x)).sum(axis=1) > 0)
        fig = FA.sequence_heatmap(values, length=int(real[-1]) + 1 if len(real) else None,
                                  class_name=name, method=attr.method, title=" ")
    else:
        fig = FA.method_grid({attr.method: attr}, samples=[0], title=" ")
    fig.update_layout(height=320, margin={"t": 30, "b": 30, "l": 40, "r": 10})
    st.plotly_chart(fig, key=key)
    st.caption(caption)


def trust_view(quality: explain.Quality, *, key: str) -> None:
    """The verdict of :func:`explain.evaluate`, its reasons, and the deletion curve."""
    st.markdown(f"Trust: {verdict_badge(quality.verdict)}")
    if quality.summary:
        st.caption(escape_markdown(quality.summary))
    for reason in quality.reasons:
        st.caption("• " + escape_markdown(reason))
    if quality.curves.get("fraction"):
        with st.expander("Deletion / insertion curves"):
            st.plotly_chart(FA.deletion_curve(quality), key=key)


def has_attention(model: Any) -> bool:
    """Whether the model exposes attention maps (the zoo's Transformer does)."""
    return callable(getattr(model, "attention_maps", None))


def attention_view(run_id: str, index: int) -> None:
    """Attention of each layer (averaged over heads) for one test sample, tokens on both axes."""
    att = C.attention(run_id, R.stamp_of(run_id), index)
    st.subheader("Attention")
    layer = st.selectbox("Layer", list(range(int(att.weights.shape[0]))), key="attn_layer",
                         format_func=lambda i: f"layer {i + 1}")
    st.plotly_chart(FAT.attention_heatmap(att.weights[layer], att.tokens, layer=layer),
                    key="fig_attention")
