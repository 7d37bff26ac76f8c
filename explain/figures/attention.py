"""Attention figures (plotly): one layer's attention between tokens, averaged over heads.

Inputs are plain values (an attention matrix and token strings); no model calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from explain.errors import DataMismatchError
from explain.figures._style import apply_layout, escape

__all__ = ["attention_heatmap"]


def attention_heatmap(weights: Any, tokens: Sequence[str], *, layer: int = 0) -> go.Figure:
    """Attention of each query token (rows) to each key token (columns) of one layer.

    Parameters
    ----------
    weights : ``[L, L]`` attention weights (already averaged over heads).
    tokens : the ``L`` token strings.
    layer : the layer's index (0-based), for the title.

    Examples
    --------
    >>> fig = attention_heatmap([[0.9, 0.1], [0.3, 0.7]], ["good", "film"], layer=1)
    >>> list(fig.data[0].x), fig.layout.title.text
    (['0:good', '1:film'], 'Attention of layer 2 (mean over heads)')
    """
    a = np.asarray(weights, dtype=float)  # [L, L] query x key
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] != len(tokens):
        raise DataMismatchError(
            f"attention_heatmap needs square weights [L, L] with one token per row. Got weights "
            f"of shape {list(a.shape)} and {len(tokens)} tokens. Average over heads and cut the "
            "weights to the non-padding tokens first.")
    labels = [f"{i}:{escape(t)}" for i, t in enumerate(tokens)]
    fig = go.Figure(go.Heatmap(z=a.tolist(), x=labels, y=labels, colorscale="Blues",
                               hovertemplate="query %{y}<br>key %{x}<br>%{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title_text="query token")
    fig.update_xaxes(title_text="key token")
    return apply_layout(fig, f"Attention of layer {layer + 1} (mean over heads)",
                        height=min(900, 200 + 18 * len(tokens)))
