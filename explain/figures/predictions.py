"""Figures of a model's test-set predictions (plotly): one sample's class probabilities and a
confusion matrix whose cells can be clicked.

Inputs are plain values (probabilities, class names, the confusion counts of
:func:`explain.auditing.performance_summary`); no I/O, no model calls.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from explain.errors import DataMismatchError
from explain.figures._style import apply_layout, color_for, escape
from explain.figures.performance import confusion_matrix

__all__ = ["class_probabilities", "selectable_confusion_matrix"]

#: Colour of the true class's bar (the palette's green); other classes get the first colour.
TRUE_COLOR = color_for(2)


def class_probabilities(probs: Sequence[float], class_names: Sequence[str], *,
                        true_class: int | None = None, sample: int | None = None) -> go.Figure:
    """Bars of the predicted probability of every class; the true class's bar in green.

    Parameters
    ----------
    probs : one probability per class (``[classes]``).
    class_names : one name per class.
    true_class : index of the true class (drawn green), if known.
    sample : the sample's index, for the title.

    Examples
    --------
    >>> fig = class_probabilities([0.2, 0.8], ["cat", "dog"], true_class=1, sample=7)
    >>> list(fig.data[0].x), fig.data[0].marker.color[1] == TRUE_COLOR
    (['cat', 'dog'], True)
    """
    values = [float(p) for p in probs]
    if len(values) != len(class_names):
        raise DataMismatchError(
            f"class_probabilities needs one class name per probability. Got {len(values)} "
            f"probabilities and {len(class_names)} names. Pass the model card's class_names.")
    names = [escape(c) for c in class_names]
    colours = [TRUE_COLOR if c == true_class else color_for(0) for c in range(len(values))]
    fig = go.Figure(go.Bar(x=names, y=values, marker_color=colours,
                           hovertemplate="%{x}: %{y:.1%}<extra></extra>"))
    what = f"sample #{sample}" if sample is not None else "the sample"
    green = " (green = true class)" if true_class is not None else ""
    apply_layout(fig, f"Predicted probabilities of {what}{green}", height=300)
    fig.update_layout(yaxis={"range": [0, 1], "tickformat": ".0%"}, xaxis={"type": "category"},
                      margin={"t": 50, "b": 40})
    return fig


def selectable_confusion_matrix(matrix: Sequence[Sequence[int]],
                                class_names: Sequence[str]) -> go.Figure:
    """:func:`explain.figures.performance.confusion_matrix` with an invisible marker per cell.

    Plotly heatmaps emit no selection events, markers do: a click on a cell selects its marker,
    whose ``customdata`` is ``[true index, predicted index, count]``. The markers take over the
    hover text, so a click lands on them rather than on the heatmap.

    Examples
    --------
    >>> fig = selectable_confusion_matrix([[5, 1], [0, 4]], ["cat", "dog"])
    >>> [list(c) for c in fig.data[1].customdata]
    [[0, 0, 5], [0, 1, 1], [1, 0, 0], [1, 1, 4]]
    """
    fig = confusion_matrix(matrix, class_names)
    if not matrix:
        return fig
    names = [escape(c) for c in class_names]  # the heatmap's categories
    k = len(names)
    cells = [(t, p) for t in range(k) for p in range(k)]
    fig.data[0].hoverinfo = "skip"
    fig.add_trace(go.Scatter(
        x=[names[p] for _, p in cells], y=[names[t] for t, _ in cells], mode="markers",
        customdata=[[t, p, int(matrix[t][p])] for t, p in cells],
        marker={"size": 30, "opacity": 0, "symbol": "square"}, showlegend=False, name="cells",
        hovertemplate="true %{y}<br>predicted %{x}<br>count %{customdata[2]}"
                      "<br>click to list them<extra></extra>"))
    fig.update_layout(clickmode="event+select", dragmode=False)
    return fig
