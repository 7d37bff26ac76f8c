"""How the Explanations page draws an attribution, its trust verdict and attention maps."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

import explain
from dashboard import _ui as U

__all__ = ["attribution_view", "trust_view", "has_attention", "attention_view"]


def attribution_view(attr: explain.Attribution, run: Any, *, key: str) -> None:
    """Images as overlays, sequences as time x feature heatmaps, text as highlighted tokens."""
    from explain.figures import attribution as FA

    modality = run.card.modality.value
    if modality == "text":
        vocab = getattr(run, "vocab", None) or run.dataset.vocab
        ids = attr.inputs[0]
        tokens = U.decode_tokens(vocab, ids)
        scores = [float(s) for s, i in zip(attr.values[0].detach().numpy(), ids) if int(i) != 0]
        st.markdown(U.highlighted_tokens(tokens, scores), unsafe_allow_html=True)
        return
    st.plotly_chart(FA.attribution_figure(attr, modality=modality), key=key)


def trust_view(quality: dict[str, Any]) -> None:
    """The verdict line of :func:`explain.evaluate` and its numbers."""
    verdict = str(quality.get("verdict") or quality.get("severity") or "n/a")
    icon = {"trustworthy": "✅", "pass": "✅", "questionable": "⚠️", "warn": "⚠️",
            "untrustworthy": "❌", "fail": "❌"}.get(verdict.lower(), "ℹ️")
    st.markdown(f"Trust: {icon} **{U._md_escape(verdict)}**")
    summary = quality.get("summary")
    if summary:
        st.caption(U._md_escape(summary))
    numbers = {k: v for k, v in quality.items() if isinstance(v, (int, float)) and
               not isinstance(v, bool)}
    if numbers:
        st.dataframe({"metric": list(numbers), "value": [float(v) for v in numbers.values()]},
                     hide_index=True)


def has_attention(model: Any) -> bool:
    """Whether the model exposes attention maps (the zoo's Transformer does)."""
    return callable(getattr(model, "attention_maps", None))


def attention_view(run: Any, index: int) -> None:
    """Attention of each layer (averaged over heads) for one test sample, tokens on both axes."""
    import plotly.graph_objects as go

    x = run.dataset.test.tensors[0][index:index + 1]
    maps = run.model.attention_maps(x)  # list of [1, heads, L, L]
    vocab = getattr(run, "vocab", None) or run.dataset.vocab
    n = int((x[0] != 0).sum())
    tokens = U.decode_tokens(vocab, x[0])[:n]
    st.subheader("Attention")
    layer = st.selectbox("Layer", list(range(len(maps))), key="attn_layer",
                         format_func=lambda i: f"layer {i + 1}")
    a = np.asarray(maps[layer][0].detach().float().mean(0))[:n, :n]
    labels = [f"{i}:{t}" for i, t in enumerate(tokens)]
    fig = go.Figure(go.Heatmap(z=a, x=labels, y=labels, colorscale="Blues",
                               hovertemplate="query %{y}<br>key %{x}<br>%{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title_text="query token")
    fig.update_xaxes(title_text="key token")
    fig.update_layout(title=f"Attention of layer {layer + 1} (mean over heads)",
                      template="plotly_white", height=min(900, 200 + 18 * n))
    st.plotly_chart(fig, key="fig_attention")
