"""Figures of the four question sections: calibration before/after temperature scaling, deep vs
shallow baselines, accuracy under corruptions, and the confidence distributions of the shift
test. Built from the typed sections only.

Examples
--------
>>> from explain.auditing.sections import RobustnessSection, CorruptionCurve
>>> sec = RobustnessSection(clean_accuracy=0.9, curves=(CorruptionCurve(
...     "noise", (0.9, 0.8, 0.7, 0.6, 0.5), (1.0, 0.89, 0.78, 0.67, 0.56)),))
>>> [f.layout.title.text for f in robustness_figures(sec)]
['Accuracy under corruptions (relative to clean)']
"""

from __future__ import annotations

import plotly.graph_objects as go

from explain.auditing.sections import (
    CalibrationSection,
    DistributionShiftSection,
    RobustnessSection,
    ShallowBaselineSection,
)
from explain.figures._style import apply_layout, color_for, escape
from explain.figures.performance import reliability_diagram

__all__ = ["calibration_figures", "baseline_figures", "robustness_figures", "shift_figures"]


def calibration_figures(sec: CalibrationSection) -> list[go.Figure]:
    """Reliability diagrams before and after temperature scaling."""
    if not sec.available:
        return []
    figs = [reliability_diagram(sec.bins, sec.ece)]
    if sec.bins_after and sec.temperature is not None:
        after = reliability_diagram(sec.bins_after, sec.ece_after)
        after.layout.title.text = (f"After temperature scaling (T = {sec.temperature:.2f}), "
                                   f"ECE = {sec.ece_after or 0:.3f}")
        figs.append(after)
    return figs


def baseline_figures(sec: ShallowBaselineSection) -> list[go.Figure]:
    """Test accuracy of the deep model and each shallow baseline (parameters on hover)."""
    if not sec.available or sec.deep is None:
        return []
    rows = [sec.deep, *sec.baselines]
    fig = go.Figure(go.Bar(
        x=[escape(r.name) for r in rows], y=[r.accuracy for r in rows],
        marker_color=[color_for(i) for i in range(len(rows))],
        customdata=[[r.parameters, r.latency_ms] for r in rows],
        hovertemplate="%{x}<br>accuracy %{y:.3f}<br>%{customdata[0]:,} parameters<br>"
                      "%{customdata[1]:.3g} ms per sample<extra></extra>"))
    low = min(r.accuracy for r in rows)
    fig.update_yaxes(range=[max(0.0, low - 0.1), 1.0], title_text="test accuracy")
    return [apply_layout(fig, "Deep model vs shallow baselines (test accuracy)", height=340)]


def robustness_figures(sec: RobustnessSection) -> list[go.Figure]:
    """Accuracy relative to clean per corruption, severity 1..5."""
    if not sec.available or not sec.curves:
        return []
    fig = go.Figure()
    for i, c in enumerate(sec.curves):
        fig.add_trace(go.Scatter(x=[0, 1, 2, 3, 4, 5], y=[1.0, *c.relative], name=escape(c.name),
                                 mode="lines+markers", line={"color": color_for(i)},
                                 hovertemplate=f"{escape(c.name)}<br>severity %{{x}}<br>"
                                               "%{y:.2f} of clean accuracy<extra></extra>"))
    fig.update_xaxes(title_text="severity (0 = clean)", dtick=1)
    fig.update_yaxes(title_text="accuracy / clean accuracy", rangemode="tozero")
    return [apply_layout(fig, "Accuracy under corruptions (relative to clean)", height=360)]


def shift_figures(sec: DistributionShiftSection) -> list[go.Figure]:
    """Top-class confidence histograms of the reference and the current data."""
    if not sec.available or not sec.confidence_edges:
        return []
    e = sec.confidence_edges
    centres = [(a + b) / 2 for a, b in zip(e[:-1], e[1:])]
    fig = go.Figure()
    for i, (name, values) in enumerate(((sec.reference, sec.confidence_reference),
                                        (sec.current, sec.confidence_current))):
        fig.add_trace(go.Bar(x=centres, y=list(values), name=escape(name), opacity=0.6,
                             marker_color=color_for(i), width=e[1] - e[0]))
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title_text="confidence (max softmax probability)", range=[0, 1])
    fig.update_yaxes(title_text="fraction of samples")
    return [apply_layout(fig, "Distribution shift: confidence of reference vs current",
                         height=340)]
