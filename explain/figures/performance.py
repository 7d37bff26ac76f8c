"""Performance figures (plotly): confusion matrix, per-class precision/recall, reliability
diagram with the expected calibration error, and the most confident mistakes.

Inputs are the typed rows of :class:`explain.auditing.sections.PerformanceSection`
(:class:`ClassMetrics`, :class:`CalibrationBin`, :class:`Mistake`); no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from explain.auditing.sections.performance import CalibrationBin, ClassMetrics, Mistake
from explain.figures._style import apply_layout, escape
from explain.figures.training import MARK, TRAIN, VAL, _num, empty_figure

__all__ = ["confusion_matrix", "per_class_metrics", "reliability_diagram", "confident_mistakes",
           "mistake_gallery"]


def confusion_matrix(matrix: Sequence[Sequence[int]], class_names: Sequence[str],
                     normalize: bool = True) -> go.Figure:
    """Counts of true (rows) vs predicted (columns) classes; colour is the row-normalized rate.

    Examples
    --------
    >>> fig = confusion_matrix([[5, 1], [0, 4]], ["cat", "dog"])
    >>> [list(row) for row in fig.data[0].text]
    [['5', '1'], ['0', '4']]
    """
    if not matrix:
        return empty_figure("Confusion matrix", "No labelled data was evaluated.")
    names = [escape(c) for c in class_names]
    rows = [[int(v) for v in row] for row in matrix]
    totals = [sum(r) or 1 for r in rows]
    z = [[v / t for v in r] for r, t in zip(rows, totals)] if normalize else rows
    fig = go.Figure(go.Heatmap(
        z=z, x=names, y=names, text=[[str(v) for v in r] for r in rows], texttemplate="%{text}",
        colorscale="Blues", zmin=0, zmax=1 if normalize else None,
        colorbar={"title": "row rate" if normalize else "count"},
        hovertemplate="true %{y}<br>predicted %{x}<br>count %{text}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title_text="true class", type="category")
    fig.update_xaxes(title_text="predicted class", type="category")
    side = max(320, min(900, 120 + 32 * len(names)))
    apply_layout(fig, "Confusion matrix", height=side)
    return fig


def per_class_metrics(per_class: Sequence[ClassMetrics]) -> go.Figure:
    """Precision and recall per class (bars), support in the hover text."""
    if not per_class:
        return empty_figure("Per-class precision and recall", "No labelled data was evaluated.")
    names = [escape(r.name) for r in per_class]
    support = [r.support for r in per_class]
    fig = go.Figure()
    for key, colour in (("precision", TRAIN), ("recall", VAL)):
        fig.add_trace(go.Bar(x=names, y=[_num(getattr(r, key)) for r in per_class], name=key,
                             marker_color=colour, customdata=support,
                             hovertemplate="%{x}: " + key + " %{y:.3f}<br>support %{customdata}"
                                           "<extra></extra>"))
    fig.update_yaxes(range=[0, 1.05], title_text="score")
    fig.update_xaxes(title_text="class", type="category")
    apply_layout(fig, "Per-class precision and recall", height=340)
    fig.update_layout(barmode="group")
    return fig


def reliability_diagram(bins: Sequence[CalibrationBin], ece: float | None) -> go.Figure:
    """Accuracy vs confidence per bin against the diagonal of perfect calibration.

    Bars below the diagonal mean over-confidence; the title gives the expected calibration error.
    """
    used = [b for b in bins if b.count]
    if not used:
        return empty_figure("Calibration", "No labelled data was evaluated.")
    centres = [(b.lo + b.hi) / 2 for b in used]
    width = [b.hi - b.lo for b in used]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=centres, y=[_num(b.accuracy) for b in used], width=width,
                         name="accuracy", marker_color=TRAIN, customdata=[b.count for b in used],
                         hovertemplate="confidence %{x:.2f}<br>accuracy %{y:.3f}<br>"
                                       "%{customdata} samples<extra></extra>"))
    fig.add_trace(go.Scatter(x=centres, y=[_num(b.confidence) for b in used], mode="markers",
                             name="mean confidence", marker={"color": MARK, "symbol": "line-ew-open",
                                                             "size": 14}))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                             line={"color": "black", "dash": "dot"}))
    ece_text = f"ECE = {ece:.3f}" if _num(ece) is not None else "ECE not available"
    fig.update_xaxes(range=[0, 1], title_text="confidence (max softmax probability)")
    fig.update_yaxes(range=[0, 1], title_text="accuracy")
    apply_layout(fig, f"Calibration (reliability diagram), {ece_text}", height=360)
    return fig


def confident_mistakes(mistakes: Sequence[Mistake],
                       class_names: Sequence[str]) -> go.Figure:
    """The most confident wrong predictions: sample, true and predicted class, confidence."""
    if not mistakes:
        return empty_figure("Most confident mistakes", "No mistakes among the evaluated samples.")
    names = [escape(c) for c in class_names]
    labels = [f"#{m.index}: {names[m.true]} → {names[m.pred]}" for m in mistakes]
    fig = go.Figure(go.Bar(x=[_num(m.confidence) for m in mistakes], y=labels,
                           orientation="h", marker_color=MARK,
                           hovertemplate="%{y}<br>confidence %{x:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category", title_text="sample: true → predicted")
    fig.update_xaxes(range=[0, 1], title_text="confidence in the wrong class")
    apply_layout(fig, "Most confident mistakes", height=max(260, 80 + 26 * len(labels)))
    return fig


def mistake_gallery(images: Sequence[Any], mistakes: Sequence[Mistake],
                    class_names: Sequence[str], per_row: int = 5) -> go.Figure:
    """Thumbnails of the most confident mistakes (images ``[C, H, W]``), titled true → predicted.

    Examples
    --------
    >>> from explain.auditing.sections import Mistake
    >>> fig = mistake_gallery([[[[0.0, 1.0], [1.0, 0.0]]]], [Mistake(3, 0, 1, 0.9)], ["a", "b"])
    >>> fig.layout.annotations[0].text
    '#3: a → b (0.90)'
    """
    import numpy as np
    from plotly.subplots import make_subplots

    pairs = [(np.asarray(img, dtype=float), m) for img, m in zip(images, mistakes)]
    if not pairs:
        return empty_figure("Most confident mistakes", "No mistakes among the evaluated samples.")
    names = [escape(c) for c in class_names]
    rows = -(-len(pairs) // per_row)
    titles = [f"#{m.index}: {names[m.true]} → {names[m.pred]} ({m.confidence:.2f})"
              for _, m in pairs]
    fig = make_subplots(rows=rows, cols=per_row, subplot_titles=titles,
                        horizontal_spacing=0.02, vertical_spacing=0.12)
    for k, (img, _) in enumerate(pairs):
        r, c = k // per_row + 1, k % per_row + 1
        if img.ndim == 3 and img.shape[0] == 3:
            lo, hi = float(img.min()), float(img.max())
            rgb = ((img - lo) / (hi - lo if hi > lo else 1.0) * 255).astype("uint8")
            fig.add_trace(go.Image(z=rgb.transpose(1, 2, 0), hoverinfo="skip"), row=r, col=c)
        else:
            fig.add_trace(go.Heatmap(z=img.reshape(img.shape[-2], img.shape[-1]),
                                     colorscale="gray", showscale=False, hoverinfo="skip"),
                          row=r, col=c)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    for key in [k for k in fig.layout if k.startswith("yaxis")]:
        fig.layout[key].scaleanchor = "x" + key[len("yaxis"):]
    for a in fig.layout.annotations:
        a.font = {"size": 11}
    return apply_layout(fig, "Most confident mistakes (inputs)", height=60 + 190 * rows)
