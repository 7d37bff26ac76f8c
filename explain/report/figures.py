"""Rebuild a report's figures from its data, with the same functions the dashboard uses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go

from explain.figures import performance as perf
from explain.figures import training as tr

__all__ = ["section_figures", "explanation_figures"]


def _training(sec: Mapping[str, Any]) -> list[go.Figure]:
    figs: list[go.Figure] = []
    if sec.get("available"):
        h = sec.get("history") or {}
        figs.append(tr.loss_curves(h, sec.get("overfit_epoch")))
        figs.append(tr.gradient_flow(h))
        figs.append(tr.activation_health(h))
        if h.get("temporal"):
            figs.append(tr.temporal_decay(h))
    alphas = (sec.get("spectral") or {}).get("alphas") or {}
    if alphas:
        figs.append(tr.spectral_exponents(alphas))
    return figs


def _performance(sec: Mapping[str, Any]) -> list[go.Figure]:
    if not sec.get("available"):
        return []
    names = sec.get("class_names", [])
    cal = sec.get("calibration") or {}
    mistakes = sec.get("mistakes", [])
    figs = [perf.confusion_matrix(sec.get("confusion", []), names),
            perf.per_class_metrics(sec.get("per_class", [])),
            perf.reliability_diagram(cal.get("bins", []), cal.get("ece")),
            perf.confident_mistakes(mistakes, names)]
    shown = [m for m in mistakes if "input" in m]
    if shown:
        figs.append(perf.mistake_gallery([m["input"] for m in shown], shown, names))
    return figs


def explanation_figures(sec: Mapping[str, Any]) -> list[go.Figure]:
    """A grid of samples x methods from the attribution figures, when they are installed."""
    if not sec.get("available") or not sec.get("samples"):
        return []
    try:
        from explain.figures import attribution as att
    except ImportError:
        return []
    from explain.report._explain_figs import build
    return build(att, sec)


def section_figures(report: Any) -> dict[str, list[go.Figure]]:
    """Section name -> its figures, rebuilt from ``report.sections`` (a Report or its dict)."""
    sections = report.sections if hasattr(report, "sections") else report.get("sections", {})
    out = {"training": _training(sections.get("training") or {}),
           "performance": _performance(sections.get("performance") or {}),
           "explanations": explanation_figures(sections.get("explanations") or {}),
           "data_sufficiency": []}
    ds = sections.get("data_sufficiency") or {}
    if ds.get("available"):
        out["data_sufficiency"].append(tr.data_sufficiency(ds.get("curve", [])))
    return out
