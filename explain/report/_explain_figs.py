"""Figures of the explanations section, rebuilt from the report's stored attributions with the
attribution figures of :mod:`explain.figures.attribution` (the dashboard uses the same)."""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

import plotly.graph_objects as go
import torch

from explain.attribution.result import Attribution

__all__ = ["build", "attributions_of", "token_blocks"]


def attributions_of(sec: Mapping[str, Any]) -> dict[str, Attribution]:
    """Method -> an :class:`explain.Attribution` of the stored samples (values and inputs)."""
    samples = sec.get("samples") or []
    out: dict[str, Attribution] = {}
    for m in sec.get("methods", []):
        name = m["method"]
        if m.get("error") or not samples or any(name not in s["attributions"] for s in samples):
            continue
        values = torch.tensor([s["attributions"][name] for s in samples], dtype=torch.float64)
        inputs = (torch.tensor([s["input"] for s in samples]) if all("input" in s for s in samples)
                  else torch.zeros(0))
        out[name] = Attribution(values=values, method=str(m.get("used", name)),
                                target=torch.tensor([s["pred"] for s in samples]), inputs=inputs,
                                requested_method=name)
    return out


def _label(sec: Mapping[str, Any], s: Mapping[str, Any]) -> str:
    names = sec.get("class_names", [])
    pred = names[s["pred"]] if s["pred"] < len(names) else str(s["pred"])
    if s.get("true") is None:
        return f"sample #{s['index']}, predicted {pred}"
    true = names[s["true"]] if s["true"] < len(names) else str(s["true"])
    return f"sample #{s['index']}: true {true}, predicted {pred} ({s['confidence']:.2f})"


def token_blocks(sec: Mapping[str, Any], att: ModuleType) -> list[tuple[str, str]]:
    """(label, safe HTML) per text sample and method: tokens highlighted by attribution."""
    blocks = []
    for s in sec.get("samples") or []:
        tokens, ids = s.get("tokens") or [], s.get("input") or []
        keep = [i for i, t in enumerate(ids) if t != 0]  # drop padding
        for method, values in s["attributions"].items():
            flat = values if isinstance(values, list) else [values]
            if len(flat) != len(tokens):
                continue
            blocks.append((f"{_label(sec, s)} · {method}", att.token_html(
                [tokens[i] for i in keep], [flat[i] for i in keep])))
    return blocks


def build(att: ModuleType, sec: Mapping[str, Any]) -> list[go.Figure]:
    """The grid of samples x methods, image overlays, and each method's trust curves."""
    from explain.figures._style import escape

    figs: list[go.Figure] = []
    attrs = attributions_of(sec)
    samples = sec.get("samples") or []
    modality = sec.get("modality")
    if attrs and modality != "text":
        grid = att.method_grid(attrs, samples=list(range(len(samples))))
        if modality == "image":  # square pixels: each cell keeps the image's aspect ratio
            for key in [k for k in grid.layout if k.startswith("yaxis")]:
                grid.layout[key].scaleanchor = "x" + key[len("yaxis"):]
        figs.append(grid)
    if attrs and modality == "image":
        first = next(iter(attrs))
        for j, s in enumerate(samples):
            if "input" in s:
                overlay = att.image_overlay(
                    torch.tensor(s["input"]), attrs[first].values[j], method=first,
                    title=f"{escape(first)} · {escape(_label(sec, s))}")
                figs.append(overlay.update_layout(height=300))
    for m in sec.get("methods", []):
        q = m.get("quality") or {}
        if (q.get("curves") or {}).get("deletion"):
            figs.append(att.deletion_curve(q))
        if (q.get("sanity_curve") or {}).get("correlation"):
            figs.append(att.sanity_curve(q))
    agree = sec.get("agreement") or {}
    if agree.get("matrix"):
        figs.append(att.agreement_heatmap(agree["matrix"], agree["methods"]))
    return figs
