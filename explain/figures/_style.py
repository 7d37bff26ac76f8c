"""Shared look of every deepscope figure: colours, the diverging scale, layout, escaping.

Every module in :mod:`explain.figures` builds its figures with these helpers so the report and the
dashboard look the same. Kept deliberately small.

Examples
--------
>>> import plotly.graph_objects as go
>>> fig = apply_layout(go.Figure(), "Loss per epoch")
>>> fig.layout.title.text
'Loss per epoch'
>>> symmetric_limit([-0.5, 2.0])
2.0
>>> escape("<b>cat</b>")
'&lt;b&gt;cat&lt;/b&gt;'
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from typing import Any

import plotly.graph_objects as go

__all__ = [
    "DIVERGING",
    "DIVERGING_OVERLAY",
    "SEQUENTIAL",
    "GRAY",
    "PALETTE",
    "FONT_FAMILY",
    "apply_layout",
    "color_for",
    "escape",
    "symmetric_limit",
]

#: Diverging scale for signed scores (attributions): blue = against the class, red = for it.
DIVERGING = "RdBu_r"
#: The diverging scale fading to transparent at zero, for heatmaps drawn over an image.
DIVERGING_OVERLAY = [[0.0, "rgba(5,48,97,1)"], [0.25, "rgba(67,147,195,0.75)"],
                     [0.5, "rgba(247,247,247,0)"], [0.75, "rgba(214,96,77,0.75)"],
                     [1.0, "rgba(103,0,31,1)"]]
#: Sequential scale for non-negative values (norms, fractions, counts).
SEQUENTIAL = "Viridis"
#: Background scale for grayscale images under an overlay.
GRAY = "gray"
#: Qualitative colours for lines (one per series / method), colour-blind safe (Okabe-Ito).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442",
           "#000000")
# Colours of grades are :attr:`explain.Severity.color` (the one presentation table).
FONT_FAMILY = "Inter, Helvetica, Arial, sans-serif"


def color_for(index: int) -> str:
    """The palette colour of series number ``index`` (wraps around)."""
    return PALETTE[index % len(PALETTE)]


def escape(text: Any) -> str:
    """HTML-escape any user string (class name, token, layer name) before it goes into a figure.

    Plotly renders a subset of HTML in titles, labels and hover text, so an unescaped
    ``<script>`` or ``<b>`` in a token would be interpreted instead of shown.
    """
    return html.escape(str(text), quote=True)


def symmetric_limit(values: Any) -> float:
    """The largest absolute finite value, for a colour scale centred on zero (1.0 if none)."""
    try:
        import numpy as np
        arr = np.asarray(values, dtype=float)
        arr = arr[np.isfinite(arr)]
        limit = float(np.abs(arr).max()) if arr.size else 0.0
    except (TypeError, ValueError):  # pragma: no cover - ragged input
        flat = [abs(float(v)) for v in _flatten(values) if math.isfinite(float(v))]
        limit = max(flat, default=0.0)
    return limit if limit > 0 else 1.0


def _flatten(values: Any) -> Iterable[Any]:
    for v in values:
        if isinstance(v, (list, tuple)):
            yield from _flatten(v)
        else:
            yield v


def apply_layout(fig: go.Figure, title: str, *, height: int | None = None,
                 width: int | None = None, showlegend: bool | None = None) -> go.Figure:
    """Give ``fig`` the house layout and a title that says what is shown; returns ``fig``.

    ``title`` is used as given: escape user strings in it with :func:`escape` first.
    """
    fig.update_layout(
        title={"text": title, "x": 0.01, "xanchor": "left"},
        template="plotly_white",
        font={"family": FONT_FAMILY, "size": 13},
        margin={"l": 60, "r": 20, "t": 60, "b": 50},
    )
    if height is not None:
        fig.update_layout(height=height)
    if width is not None:
        fig.update_layout(width=width)
    if showlegend is not None:
        fig.update_layout(showlegend=showlegend)
    return fig
