"""How the Explanations page draws an attribution, its trust verdict and attention maps."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

import explain
from dashboard import _ui as U

__all__ = ["attribution_view", "trust_view", "has_attention", "attention_view"]


def _class_of(attr: explain.Attribution, run: Any) -> str:
    return U.class_name(run.card.class_names, int(attr.target[0]))


def attribution_view(attr: explain.Attribution, run: Any, *, key: str) -> None:
    """Images as overlays, sequences as time x feature heatmaps, text as highlighted tokens."""
    from explain.figures import attribution as FA

    modality = run.card.modality.value
    x, values = attr.inputs[0], attr.values[0].detach()
    name = _class_of(attr, run)
    if modality == "text":
        vocab = getattr(run, "vocab", None) or run.dataset.vocab
        keep = [j for j, i in enumerate(x.tolist()) if int(i) != 0]
        tokens = U.decode_tokens(vocab, x)
        st.markdown(FA.token_html(tokens, values.numpy()[keep]), unsafe_allow_html=True)
        st.caption(f"red: evidence for {U.md_escape(name)}, blue: against")
        return
    if modality == "image":
        fig = FA.image_overlay(x, values, class_name=name, method=attr.method, title=" ")
    elif modality == "sequence":
        real = np.flatnonzero(np.abs(np.asarray(x)).sum(axis=1) > 0)
        fig = FA.sequence_heatmap(values, length=int(real[-1]) + 1 if len(real) else None,
                                  class_name=name, method=attr.method, title=" ")
    else:
        fig = FA.method_grid({attr.method: attr}, samples=[0], title=" ")
    fig.update_layout(height=320, margin={"t": 30, "b": 30, "l": 40, "r": 10})
    st.plotly_chart(fig, key=key)
    st.caption(f"red: evidence for {U.md_escape(name)}, blue: against")


def trust_view(quality: dict[str, Any], *, key: str) -> None:
    """The verdict of :func:`explain.evaluate`, its reasons, and the deletion curve."""
    from explain.figures import attribution as FA

    verdict = str(quality.get("verdict") or "n/a")
    icon = {"trustworthy": U.SEVERITY_ICON["pass"], "doubtful": U.SEVERITY_ICON["warn"],
            "fails-sanity": U.SEVERITY_ICON["fail"]}.get(verdict, U.SEVERITY_ICON["info"])
    st.markdown(f"Trust: {icon} **{U.md_escape(verdict.replace('-', ' '))}**")
    if quality.get("summary"):
        st.caption(U.md_escape(quality["summary"]))
    for reason in quality.get("reasons") or ():
        st.caption("• " + U.md_escape(reason))
    curves = quality.get("curves") or {}
    if curves.get("fraction"):
        with st.expander("Deletion / insertion curves"):
            st.plotly_chart(FA.deletion_curve(quality), key=key)


def has_attention(model: Any) -> bool:
    """Whether the model exposes attention maps (the zoo's Transformer does)."""
    return callable(getattr(model, "attention_maps", None))


def attention_view(run: Any, index: int) -> None:
    """Attention of each layer (averaged over heads) for one test sample, tokens on both axes."""
    import plotly.graph_objects as go

    x = run.dataset.test.tensors[0][index:index + 1]
    maps = run.model.attention_maps(x)  # [layers, 1, heads, L, L]
    vocab = getattr(run, "vocab", None) or run.dataset.vocab
    n = int((x[0] != 0).sum())
    tokens = U.decode_tokens(vocab, x[0])[:n]
    st.subheader("Attention")
    layer = st.selectbox("Layer", list(range(int(maps.shape[0]))), key="attn_layer",
                         format_func=lambda i: f"layer {i + 1}")
    a = maps[layer, 0].float().mean(0).numpy()[:n, :n]  # [L, L] mean over heads
    labels = [f"{i}:{t}" for i, t in enumerate(tokens)]
    fig = go.Figure(go.Heatmap(z=a, x=labels, y=labels, colorscale="Blues",
                               hovertemplate="query %{y}<br>key %{x}<br>%{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title_text="query token")
    fig.update_xaxes(title_text="key token")
    fig.update_layout(title=f"Attention of layer {layer + 1} (mean over heads)",
                      template="plotly_white", height=min(900, 200 + 18 * n))
    st.plotly_chart(fig, key="fig_attention")
