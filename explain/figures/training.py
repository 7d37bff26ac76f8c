"""Training-health figures (plotly), built from a training history or the data behind a finding.

Every function takes plain data (an :class:`explain.monitor.History`, or the ``dict`` a
:class:`explain.Report` stores for it) and returns a ``plotly.graph_objects.Figure``; none does
I/O. The report and the dashboard draw with these same functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explain.figures._style import PALETTE, SEQUENTIAL, apply_layout, escape
from explain.findings import Severity

__all__ = [
    "loss_curves",
    "gradient_flow",
    "activation_health",
    "temporal_decay",
    "spectral_exponents",
    "data_sufficiency",
    "empty_figure",
    "best_epoch",
]

TRAIN, VAL, MARK = PALETTE[0], PALETTE[1], Severity.FAIL.color
DEAD, SATURATED = "#7F7F7F", PALETTE[3]


def _get(history: Any, name: str, default: Any = None) -> Any:
    """``history.name`` or ``history[name]`` (a History object or its dict form)."""
    if isinstance(history, Mapping):
        value = history.get(name, default)
    else:
        value = getattr(history, name, default)
    return default if value is None else value


def _num(v: Any) -> float | None:
    """A finite float, or ``None`` (missing or non-finite values are gaps in a line)."""
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def empty_figure(title: str, message: str) -> go.Figure:
    """A figure that says why there is nothing to draw."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font={"size": 14})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    apply_layout(fig, title)
    fig.update_layout(height=220)
    return fig


def best_epoch(history: Any) -> int | None:
    """The epoch with the lowest validation loss (where early stopping would stop), or ``None``."""
    epochs = _get(history, "epochs", {})
    vals = [_num(v) for v in epochs.get("val_loss", [])]
    numbers = epochs.get("epoch") or list(range(1, len(vals) + 1))
    pairs = [(v, e) for v, e in zip(vals, numbers) if v is not None]
    return int(min(pairs)[1]) if pairs else None


def loss_curves(history: Any, overfit_epoch: int | None = None) -> go.Figure:
    """Loss and accuracy per epoch, train vs validation, with the overfitting point marked.

    Parameters
    ----------
    history : a History (or its dict) with ``epochs`` columns ``epoch``, ``train_loss``,
        ``val_loss``, ``train_acc``, ``val_acc``.
    overfit_epoch : the epoch to mark as "overfitting starts here" (usually the epoch of the lowest
        validation loss, from the overfitting finding). ``None`` marks only the lowest
        validation loss.

    Examples
    --------
    >>> h = {"epochs": {"epoch": [1, 2, 3], "train_loss": [1.0, 0.5, 0.2],
    ...                 "val_loss": [1.1, 0.7, 0.9]}}
    >>> fig = loss_curves(h, overfit_epoch=2)
    >>> [t.name for t in fig.data][:2]
    ['train loss', 'val loss']
    """
    epochs = _get(history, "epochs", {})
    n = max((len(v) for v in epochs.values()), default=0)
    if n == 0:
        return empty_figure("Training curves", "No epochs were logged (mon.log_epoch(...)).")
    x = [_num(e) for e in epochs.get("epoch") or range(1, n + 1)]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"))
    for col, metric in ((1, "loss"), (2, "acc")):
        for split, colour in (("train", TRAIN), ("val", VAL)):
            ys = [_num(v) for v in epochs.get(f"{split}_{metric}", [])]
            if any(v is not None for v in ys):
                fig.add_trace(go.Scatter(x=x, y=ys, name=f"{split} {metric.replace('acc', 'accuracy')}",
                                         mode="lines+markers", line={"color": colour},
                                         legendgroup=split), row=1, col=col)
    best = best_epoch(history)
    mark = overfit_epoch if overfit_epoch is not None else best
    if mark is not None:
        label = (f"overfitting starts (epoch {mark})" if overfit_epoch is not None
                 else f"lowest val loss (epoch {mark})")
        for col in (1, 2):
            fig.add_vline(x=mark, line={"color": MARK, "dash": "dash"}, row=1, col=col)
        fig.add_annotation(x=mark, y=0.02, yref="y domain", xref="x", text=label,
                           showarrow=False, font={"color": MARK}, xanchor="left",
                           yanchor="bottom", bgcolor="rgba(255,255,255,0.8)")
    fig.update_xaxes(title_text="epoch", dtick=1 if n <= 20 else None)
    apply_layout(fig, "Training curves")
    fig.update_layout(height=360)
    return fig


def _layer_series(history: Any, metric: str) -> tuple[list[str], list[list[float | None]]]:
    layers = _get(history, "layers", {})
    names = [name for name, m in layers.items() if metric in m]
    return names, [[_num(v) for v in layers[name][metric]] for name in names]


def gradient_flow(history: Any, metric: str = "grad_norm") -> go.Figure:
    """Gradient norm per layer (rows, input at the top) over training steps, log10 colour scale.

    Vanishing gradients show as rows that fade toward the input; exploding ones as bright
    columns. Missing or non-finite values are left blank.
    """
    names, series = _layer_series(history, metric)
    if not names:
        return empty_figure("Gradient flow", "No per-layer gradient norms were recorded "
                            "(train inside `with explain.TrainingMonitor(model) as mon:`).")
    steps = list(_get(history, "steps", [])) or list(range(max(len(s) for s in series)))
    z = [[math.log10(v) if v is not None and v > 0 else None for v in row] for row in series]
    fig = go.Figure(go.Heatmap(
        z=z, x=steps[: max(len(r) for r in z)], y=[escape(n) for n in names],
        colorscale=SEQUENTIAL,
        colorbar={"title": f"log10 {metric}"},
        hovertemplate="layer %{y}<br>step %{x}<br>log10 " + metric + " %{z:.2f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title_text="layer (input at top)", type="category")
    fig.update_xaxes(title_text="sampled training step", type="category")
    apply_layout(fig, "Gradient flow per layer over time", height=max(260, 60 + 28 * len(names)))
    return fig


def _tail_mean(values: Sequence[float | None], fraction: float = 0.25) -> float | None:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    tail = vals[-max(1, int(math.ceil(len(vals) * fraction))):]
    return sum(tail) / len(tail)


def activation_health(history: Any) -> go.Figure:
    """Dead and saturated units per layer (mean over the last quarter of sampled steps)."""
    layers = _get(history, "layers", {})
    names = [n for n, m in layers.items() if "frac_dead" in m or "frac_saturated" in m]
    if not names:
        return empty_figure("Activation health", "No activation statistics were recorded "
                            "(train inside `with explain.TrainingMonitor(model) as mon:`).")
    fig = go.Figure()
    for metric, label, colour in (("frac_dead", "dead units", DEAD),
                                  ("frac_saturated", "saturated outputs", SATURATED)):
        ys = [_tail_mean([_num(v) for v in layers[n].get(metric, [])]) for n in names]
        fig.add_trace(go.Bar(x=[escape(n) for n in names], y=ys, name=label, marker_color=colour,
                             hovertemplate="%{x}: %{y:.1%}<extra>" + label + "</extra>"))
    fig.add_hline(y=0.5, line={"color": MARK, "dash": "dot"},
                  annotation_text="half the units", annotation_position="top left")
    fig.update_yaxes(range=[0, 1], tickformat=".0%", title_text="fraction (late training)")
    fig.update_xaxes(title_text="layer (input → output)", type="category")
    apply_layout(fig, "Activation health per layer")
    fig.update_layout(barmode="group", height=340)
    return fig


def temporal_decay(history: Any) -> go.Figure:
    """The BPTT curve: norm of d loss / d input at each time step, one line per recording.

    A curve that falls by orders of magnitude from the last time step back to the first means
    early inputs barely influence learning (vanishing gradients through time).
    """
    temporal = [t for t in _get(history, "temporal", []) if _get(t, "grad_norm")]
    if not temporal:
        return empty_figure("Gradient through time", "No temporal gradient curve was recorded "
                            "(recorded by TrainingMonitor for sequence models only).")
    fig = go.Figure()
    last = len(temporal) - 1
    for i, rec in enumerate(temporal):
        ys = [_num(v) for v in _get(rec, "grad_norm")]
        shade = 0.25 + 0.75 * (i / last if last else 1.0)
        fig.add_trace(go.Scatter(
            x=list(range(1, len(ys) + 1)), y=[v if v and v > 0 else None for v in ys],
            mode="lines", name=f"step {_get(rec, 'step', i)}",
            line={"color": f"rgba(31,119,180,{shade:.2f})", "width": 3 if i == last else 1.5}))
    fig.update_yaxes(type="log", title_text="‖∂loss/∂x_t‖")
    fig.update_xaxes(title_text="time step t")
    apply_layout(fig, "Gradient through time (BPTT)")
    fig.update_layout(height=340)
    return fig


def spectral_exponents(alphas: Mapping[str, float | None]) -> go.Figure:
    """Heavy-tail exponent alpha of each layer's weight spectrum, with the 2-6 healthy band.

    WeightWatcher (Martin & Mahoney) reads alpha < 2 as over-trained / over-fit layers and
    alpha > 6 as under-trained ones.
    """
    names = [n for n, a in alphas.items() if _num(a) is not None]
    if not names:
        return empty_figure("Spectral exponents", "No layer had enough singular values to fit "
                            "a power law.")
    ys = [_num(alphas[n]) for n in names]
    colours = [MARK if y is not None and (y < 2 or y > 6) else TRAIN for y in ys]
    fig = go.Figure(go.Bar(x=[escape(n) for n in names], y=ys, marker_color=colours, name="alpha",
                           hovertemplate="%{x}: alpha %{y:.2f}<extra></extra>"))
    fig.add_hrect(y0=2, y1=6, fillcolor="green", opacity=0.08, line_width=0,
                  annotation_text="well-trained band (2-6)", annotation_position="top left")
    fig.update_xaxes(title_text="layer", type="category")
    fig.update_yaxes(title_text="power-law exponent alpha")
    apply_layout(fig, "Per-layer spectral exponents")
    fig.update_layout(height=320)
    return fig


def data_sufficiency(curve: Sequence[Sequence[float]], metric: str = "validation score") -> go.Figure:
    """Learning curve: validation score against the number of training samples.

    A curve still rising at the full data size says more data would help.
    """
    pts = sorted((_num(p[0]), _num(p[1])) for p in curve if len(p) >= 2
                 and _num(p[0]) is not None and _num(p[1]) is not None)
    if not pts:
        return empty_figure("Data sufficiency", "No learning curve was computed "
                            "(explain.checks.learning_curve(...)).")
    fig = go.Figure(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts],
                               mode="lines+markers", line={"color": TRAIN}, name=metric))
    fig.update_xaxes(title_text="training samples")
    fig.update_yaxes(title_text=metric)
    apply_layout(fig, "Data sufficiency (learning curve)")
    fig.update_layout(height=320)
    return fig
