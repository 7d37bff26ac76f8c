"""Plotly figures of attributions and of their trust metrics (no I/O; each returns a figure).

* :func:`image_overlay` - image (grayscale or RGB) under a diverging attribution heatmap.
* :func:`token_figure` / :func:`token_html` - tokens coloured by their attribution.
* :func:`sequence_heatmap` - time x feature attribution of one sequence.
* :func:`method_grid` - samples (rows) x methods (columns).
* :func:`deletion_curve` - deletion and insertion curves against their random-order baselines.
* :func:`sanity_curve` - rank correlation along cascading randomization.
* :func:`agreement_heatmap` - method x method rank correlation.

Colour scales are symmetric around zero (red: evidence for the class, blue: against it). Every
user string (class names, tokens, method and feature names) is HTML-escaped.

Examples
--------
>>> import torch
>>> fig = image_overlay(torch.rand(1, 8, 8), torch.randn(1, 8, 8), class_name="<cat>")
>>> [t.type for t in fig.data], fig.data[1].zmin == -fig.data[1].zmax
(['heatmap', 'heatmap'], True)
>>> "&lt;cat&gt;" in fig.layout.title.text
True
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explain.attribution.result import Attribution
from explain.errors import InvalidInputError
from explain.figures._style import (
    DIVERGING,
    DIVERGING_OVERLAY,
    GRAY,
    apply_layout,
    color_for,
    escape,
    symmetric_limit,
)

__all__ = ["image_overlay", "token_html", "token_figure", "sequence_heatmap", "method_grid",
           "deletion_curve", "sanity_curve", "agreement_heatmap"]


def _np(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().float().numpy()
    return np.asarray(x, dtype=float)


def _what(method: str | None, class_name: str | None) -> str:
    head = f"{escape(method)} attribution" if method else "Attribution"
    return head + (f" for class '{escape(class_name)}'" if class_name is not None else "")


def _image_map(values: Any) -> np.ndarray:
    """[C, H, W] or [H, W] -> [H, W] (summed over channels)."""
    v = _np(values)
    if v.ndim == 3:
        return v.sum(0)
    if v.ndim == 2:
        return v
    raise InvalidInputError(
        f"Image attributions must be [channels, height, width] or [height, width]. Got shape "
        f"{v.shape} instead.")


def _signed_heatmap(z: np.ndarray, *, opacity: float = 1.0, showscale: bool = True,
                    colorscale: Any = DIVERGING, **kw: Any) -> go.Heatmap:
    lim = symmetric_limit(z)
    return go.Heatmap(z=z, colorscale=colorscale, zmid=0.0, zmin=-lim, zmax=lim, opacity=opacity,
                      showscale=showscale, colorbar={"title": {"text": "attribution"}}, **kw)


def image_overlay(image: Any, values: Any, *, class_name: str | None = None,
                  method: str | None = None, opacity: float = 0.85,
                  title: str | None = None) -> go.Figure:
    """Image with its attribution as a translucent diverging heatmap on top.

    Parameters
    ----------
    image : ``[C, H, W]`` (``C`` = 1 or 3) or ``[H, W]``; any value range.
    values : attribution, same spatial size; summed over channels.
    class_name, method : named in the title (escaped).
    opacity : opacity of the heatmap (its colours also fade to transparent near zero, so the
        image shows through where the attribution is small).
    title : replaces the default title (used as given: escape user strings in it).
    """
    img = _np(image)
    if img.ndim == 3 and img.shape[0] == 1:
        img = img[0]
    attr = _image_map(values)
    fig = go.Figure()
    if img.ndim == 3 and img.shape[0] == 3:
        lo, hi = float(img.min()), float(img.max())
        rgb = ((img - lo) / (hi - lo if hi > lo else 1.0) * 255).astype(np.uint8)
        fig.add_trace(go.Image(z=rgb.transpose(1, 2, 0), hoverinfo="skip"))
    elif img.ndim == 2:
        fig.add_trace(go.Heatmap(z=img, colorscale=GRAY, showscale=False, hoverinfo="skip"))
    else:
        raise InvalidInputError(
            f"The 'image' of image_overlay must be [1 or 3, height, width] or [height, width]. "
            f"Got shape {img.shape} instead.")
    if attr.shape != img.shape[-2:]:
        raise InvalidInputError(
            f"The attribution map {attr.shape} does not match the image {img.shape[-2:]}; pass "
            f"the values computed for this image.")
    fig.add_trace(_signed_heatmap(attr, opacity=opacity, name="attribution",
                                  colorscale=DIVERGING_OVERLAY))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False, showgrid=False)
    fig.update_xaxes(showticklabels=False, showgrid=False)
    return apply_layout(fig, title or f"{_what(method, class_name)} over the input image")


def _rgba(score: float, lim: float) -> str:
    a = min(1.0, abs(score) / lim) if lim > 0 else 0.0
    rgb = "214,39,40" if score >= 0 else "31,119,180"
    return f"rgba({rgb},{a:.3f})"


def token_html(tokens: Sequence[str], scores: Sequence[float] | Any) -> str:
    """HTML of the tokens, each on a background coloured by its score (red +, blue -).

    Every token is ``html.escape``-d, so ``<script>`` is shown, never run.

    Examples
    --------
    >>> page = token_html(["<script>", "ok"], [1.0, -0.5])
    >>> "&lt;script&gt;" in page, "<script>" in page
    (True, False)
    """
    s = _np(scores).ravel()
    if len(tokens) != s.size:
        raise InvalidInputError(
            f"token_html needs one score per token. Got {len(tokens)} tokens and {s.size} "
            f"scores instead.")
    lim = symmetric_limit(s)
    spans = [f'<span title="{v:.4f}" style="background:{_rgba(v, lim)};padding:1px 3px;'
             f'margin:1px;border-radius:3px">{html.escape(str(t), quote=True)}</span>'
             for t, v in zip(tokens, s)]
    return '<div class="deepscope-tokens" style="line-height:2">' + " ".join(spans) + "</div>"


def token_figure(tokens: Sequence[str], scores: Sequence[float] | Any, *,
                 class_name: str | None = None, method: str | None = None, per_row: int = 12,
                 title: str | None = None) -> go.Figure:
    """Tokens as coloured boxes, ``per_row`` to a line (reading order), hover shows the score."""
    s = _np(scores).ravel()
    if len(tokens) != s.size:
        raise InvalidInputError(
            f"token_figure needs one score per token. Got {len(tokens)} tokens and {s.size} "
            f"scores instead.")
    rows = max(1, -(-s.size // per_row))
    z = np.full((rows, per_row), np.nan)
    text = np.full((rows, per_row), "", dtype=object)
    full = np.full((rows, per_row), "", dtype=object)
    for i, (tok, v) in enumerate(zip(tokens, s)):
        tok = str(tok)
        z[i // per_row, i % per_row] = v
        text[i // per_row, i % per_row] = escape(tok if len(tok) <= 14 else tok[:13] + "\u2026")
        full[i // per_row, i % per_row] = escape(tok)
    fig = go.Figure(_signed_heatmap(z, text=text, texttemplate="%{text}", xgap=3, ygap=3,
                                    customdata=full, textfont={"size": 14},
                                    hovertemplate="%{customdata}: %{z:.4f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", showticklabels=False, showgrid=False, zeroline=False)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    return apply_layout(fig, title or f"{_what(method, class_name)} per token",
                        height=120 + 40 * rows)


def sequence_heatmap(values: Any, *, feature_names: Sequence[str] | None = None,
                     length: int | None = None, class_name: str | None = None,
                     method: str | None = None, title: str | None = None) -> go.Figure:
    """Attribution of one sequence ``[T, F]`` as a features (rows) x time (columns) heatmap.

    ``length`` drops the padding frames after it.
    """
    v = _np(values)
    if v.ndim != 2:
        raise InvalidInputError(
            f"Sequence attributions must be [time, features]. Got shape {v.shape} instead.")
    if length is not None:
        v = v[:length]
    names = [escape(n) for n in feature_names] if feature_names is not None else \
        [f"feature {j}" for j in range(v.shape[1])]
    fig = go.Figure(_signed_heatmap(v.T, x=list(range(v.shape[0])), y=names,
                                    hovertemplate="t=%{x}, %{y}: %{z:.4f}<extra></extra>"))
    fig.update_xaxes(title_text="time step")
    return apply_layout(fig, title or f"{_what(method, class_name)} per time step and feature")


def _cell(values: np.ndarray) -> np.ndarray:
    """One sample's attribution as a 2-D map for the grid."""
    if values.ndim == 3:
        return values.sum(0)          # image [C, H, W] -> [H, W]
    if values.ndim == 2:
        return values.T               # sequence [T, F] -> features x time
    return values.reshape(1, -1)      # tabular / tokens -> one row


def method_grid(attributions: Sequence[Attribution] | Mapping[str, Attribution | Any], *,
                samples: Sequence[int] | None = None, max_samples: int = 3,
                title: str | None = None) -> go.Figure:
    """Rows of samples x columns of methods; each cell its own symmetric colour scale.

    ``attributions`` is a sequence of :class:`explain.Attribution`, or method name -> an
    Attribution or its ``values`` (a ``[samples, *sample]`` tensor or array).
    """
    pairs = list(attributions.items()) if isinstance(attributions, Mapping) else \
        [(a.method, a) for a in attributions]
    named = [(m, _np(a.values if isinstance(a, Attribution) else a))
             for m, a in pairs]
    if not named:
        raise InvalidInputError("method_grid needs at least one Attribution. Got none.")
    n = min(v.shape[0] for _, v in named)
    idx = list(samples) if samples is not None else list(range(min(n, max_samples)))
    bad = [i for i in idx if not 0 <= i < n]
    if bad:
        raise InvalidInputError(
            f"The 'samples' of method_grid must be indices below {n}. Got {bad} instead.")
    fig = make_subplots(rows=len(idx), cols=len(named), horizontal_spacing=0.03,
                        vertical_spacing=0.06, column_titles=[escape(m) for m, _ in named],
                        row_titles=[f"sample {i}" for i in idx])
    image_like = named[0][1].ndim == 4
    for r, i in enumerate(idx, start=1):
        for c, (name, v) in enumerate(named, start=1):
            z = _cell(v[i])
            fig.add_trace(_signed_heatmap(z, showscale=False, name=escape(name),
                                          hovertemplate="%{z:.4f}<extra></extra>"),
                          row=r, col=c)
    fig.update_xaxes(showticklabels=False, showgrid=False)
    fig.update_yaxes(showticklabels=False, showgrid=False,
                     autorange="reversed" if image_like else None)
    if image_like:  # square pixels: each cell keeps the image's aspect ratio
        for k in range(1, len(idx) * len(named) + 1):
            fig.layout[f"yaxis{'' if k == 1 else k}"].scaleanchor = f"x{'' if k == 1 else k}"
    return apply_layout(fig, title or f"Attributions of {len(idx)} samples by "
                                      f"{len(named)} methods", height=140 + 160 * len(idx))


def _curves_of(quality: Any) -> tuple[Mapping[str, Any], Mapping[str, Any], str | None]:
    if isinstance(quality, Mapping):
        return quality.get("curves", quality), quality.get("medians", {}), quality.get("method")
    return quality.curves, quality.medians, quality.method


def deletion_curve(quality: Any, *, title: str | None = None) -> go.Figure:
    """Deletion and insertion curves (solid) with their random-order baselines (dashed).

    ``quality`` is an :class:`explain.quality.Quality`, its ``to_dict()``, or a plain dict of
    curves (``fraction``, ``deletion``, ``insertion``, ``random_deletion``,
    ``random_insertion``).
    """
    curves, medians, method = _curves_of(quality)
    if not curves or "fraction" not in curves:
        raise InvalidInputError(
            "deletion_curve needs the faithfulness curves; evaluate with metrics including "
            "'faithfulness'.")
    x = list(curves["fraction"])
    fig = go.Figure()
    for k, key in enumerate(("deletion", "insertion")):
        for random in (False, True):
            name = f"random {key}" if random else key
            auc = medians.get(f"random_{key}_auc" if random else f"{key}_auc")
            label = f"{name} (AUC {auc:.2f})" if auc is not None else name
            fig.add_trace(go.Scatter(
                x=x, y=list(curves[f"random_{key}" if random else key]), mode="lines",
                name=label, line={"color": color_for(k), "dash": "dash" if random else "solid"}))
    fig.update_xaxes(title_text="fraction of features changed", range=[0, 1])
    fig.update_yaxes(title_text="probability of the explained class", range=[0, 1.02])
    head = f"{escape(method)}: deletion" if method else "Deletion"
    return apply_layout(fig, title or f"{head} and insertion curves vs random order")


def sanity_curve(quality: Any, *, title: str | None = None) -> go.Figure:
    """Median rank correlation with the original map as layers are randomized from the top."""
    d = quality if isinstance(quality, Mapping) else quality.to_dict()
    curve = d.get("sanity_curve") or {}
    if not curve.get("layer"):
        raise InvalidInputError("sanity_curve needs evaluate(..., metrics including 'sanity').")
    limit = (d.get("thresholds") or {}).get("max_sanity_correlation", 0.5)
    layers = ["(none)"] + [escape(n) for n in curve["layer"]]
    fig = go.Figure(go.Scatter(x=layers, y=[1.0] + list(curve["correlation"]),
                               mode="lines+markers",
                               name="rank correlation", line={"color": color_for(0)}))
    fig.add_hline(y=limit, line_dash="dot", annotation_text=f"fails above {limit}")
    fig.update_xaxes(title_text="randomized down to layer (output first)")
    fig.update_yaxes(title_text="Spearman correlation with original", range=[-1, 1.05])
    head = f"{escape(d['method'])}: " if d.get("method") else ""
    return apply_layout(fig, title or f"{head}sanity check, correlation under cascading "
                                      f"randomization")


def agreement_heatmap(matrix: Any, methods: Sequence[str], *,
                      title: str | None = None) -> go.Figure:
    """Method x method median rank correlation (:func:`explain.quality.agreement`)."""
    m = _np(matrix)
    names = [escape(x) for x in methods]
    if m.shape != (len(names), len(names)):
        raise InvalidInputError(
            f"agreement_heatmap needs a {len(names)} x {len(names)} matrix for {len(names)} "
            f"methods. Got shape {m.shape} instead.")
    fig = go.Figure(go.Heatmap(z=m, x=names, y=names, colorscale=DIVERGING, zmid=0, zmin=-1,
                               zmax=1, text=np.round(m, 2), texttemplate="%{text}"))
    fig.update_yaxes(autorange="reversed")
    return apply_layout(fig, title or "Agreement between methods (median Spearman correlation)")
