"""Helpers shared by the trust metrics: modality, a model guard, batched forwards, feature units.

A *feature unit* is what faithfulness curves remove or insert at once and what rank correlations
compare: a pixel patch (all channels) for images, one (frame, feature) cell of a real frame for
sequences, one non-pad token for text, one feature for tabular inputs. Padding (trailing all-zero
frames, token id 0) is never a unit, so it is never perturbed and never inflates a correlation.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from explain.attribution.result import Attribution
from explain.card import Modality, card_of
from explain.errors import DataMismatchError, InvalidInputError, InvalidTypeError

__all__ = [
    "ExplainFn",
    "resolve_modality",
    "model_guard",
    "device_of",
    "class_scores",
    "attribution_values",
    "feature_units",
    "real_mask",
    "default_baseline",
    "spearman",
    "median",
    "to_list",
]

#: ``explain_fn(model, inputs, target) -> values`` recomputes an explanation (sanity, sensitivity).
ExplainFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def resolve_modality(model: nn.Module, inputs: torch.Tensor,
                     modality: str | Modality | None) -> Modality:
    """The modality given, else the model card's, else inferred from the input shape and dtype."""
    if modality is not None:
        return Modality(getattr(modality, "value", modality))
    card = card_of(model)
    if card is not None:
        return card.modality
    if not inputs.is_floating_point():
        return Modality.TEXT
    by_rank = {2: Modality.TABULAR, 3: Modality.SEQUENCE, 4: Modality.IMAGE}
    if inputs.dim() not in by_rank:
        raise InvalidInputError(
            f"The 'inputs' of the attribution must be [batch, features], [batch, time, features] "
            f"or [batch, channels, height, width]. Got shape {tuple(inputs.shape)} instead. "
            f"Pass modality= explicitly or give the model a card.")
    return by_rank[inputs.dim()]


def device_of(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a parameter-free model)."""
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


@contextlib.contextmanager
def model_guard(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode and restore every module's mode and every ``.grad`` afterwards.

    Parameters and buffers are never written by the metrics (forwards run in eval mode and
    gradients are taken with respect to inputs), so restoring the mode and the gradients leaves
    the user's model exactly as it was.
    """
    if not isinstance(model, nn.Module):
        raise InvalidTypeError(
            f"The 'model' parameter of evaluate must be a torch.nn.Module. Got "
            f"{type(model).__name__} instead.")
    modes = [(m, m.training) for m in model.modules()]
    grads = [(p, None if p.grad is None else p.grad.detach().clone()) for p in model.parameters()]
    model.eval()
    try:
        yield model
    finally:
        for m, mode in modes:
            m.training = mode
        for p, g in grads:
            p.grad = g


def class_scores(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, batch_size: int,
                 probability: bool) -> torch.Tensor:
    """Logit (or softmax probability) of ``target[i]`` for each row ``x[i]``, in batched forwards.

    ``x`` is ``[n, *sample]`` and ``target`` ``[n]``; returns ``[n]`` float64 on the CPU.
    """
    device = device_of(model)
    out = []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            logits = model(x[start:start + batch_size].to(device)).float()  # [b, classes]
            if probability:
                logits = torch.softmax(logits, dim=-1)
            t = target[start:start + batch_size].to(device).long()
            out.append(logits.gather(1, t[:, None])[:, 0].double().cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def attribution_values(attribution: Attribution, n: int) -> torch.Tensor:
    """The first ``n`` attribution maps, shaped like the inputs (float64, CPU).

    Token attributions with an embedding dimension (``[B, L, E]``) are summed to ``[B, L]``; a
    map with one channel (``[B, 1, H, W]``) is broadcast over the input channels.
    """
    values = attribution.values[:n].detach().double().cpu()
    bad = int((~torch.isfinite(values)).sum())
    if bad:
        raise InvalidInputError(
            f"The attribution values of {attribution.method!r} contain {bad} NaN/inf values; "
            f"evaluate needs finite scores. Recompute the attribution (explain.attribute checks "
            f"the model's outputs and falls back when a method breaks down).")
    shape = tuple(attribution.inputs[:n].shape)
    if values.dim() == len(shape) + 1 and not attribution.inputs.is_floating_point():
        values = values.sum(-1)
    if tuple(values.shape) != shape:
        try:
            values = values.expand(shape).clone()
        except RuntimeError:
            raise DataMismatchError(
                f"The attribution values have shape {tuple(attribution.values.shape)} but the "
                f"inputs have shape {tuple(attribution.inputs.shape)}; evaluate needs one score "
                f"per input element. Recompute the attribution on these inputs.") from None
    return values


def real_mask(x: torch.Tensor, modality: Modality) -> torch.Tensor:
    """Bool mask ``x.shape``: True where an element is real data, False where it is padding."""
    if modality is Modality.TEXT:
        return x != 0
    if modality is Modality.SEQUENCE:
        nonzero = (x != 0).any(-1)                                   # [B, T]
        t = torch.arange(x.shape[1])
        last = torch.where(nonzero, t, torch.full_like(t, -1)).max(1).values  # [B]
        frames = t[None, :] <= last[:, None]                         # [B, T]
        return frames[:, :, None].expand_as(x)
    return torch.ones_like(x, dtype=torch.bool)


def default_baseline(x: torch.Tensor, modality: Modality) -> torch.Tensor:
    """The reference input when the attribution has none: pad id 0 for tokens; for sequences
    1e-6 in real frames (an all-zero baseline would be an empty sequence and change the length
    the model derives, as :func:`explain.attribute` does); zeros otherwise."""
    if modality is Modality.SEQUENCE:
        return real_mask(x, modality).to(x.dtype) * 1e-6
    return torch.zeros_like(x)


def feature_units(x: torch.Tensor, modality: Modality,
                  patch_size: int | None = None) -> tuple[torch.Tensor, int]:
    """Unit id of every element of ``x`` (``-1`` for padding) and the number of unit ids.

    Returns ``(unit [B, *sample] int64, n_ids)``. Images use square patches over all channels
    (``patch_size`` pixels a side; default: about 16 patches along the longer side).
    """
    b = x.shape[0]
    if modality is Modality.IMAGE:
        if x.dim() != 4:
            raise InvalidInputError(
                f"Image inputs must be [batch, channels, height, width]. Got shape "
                f"{tuple(x.shape)} instead.")
        _, c, h, w = x.shape
        p = patch_size or max(1, math.ceil(max(h, w) / 16))
        pw = math.ceil(w / p)
        rows = torch.arange(h)[:, None] // p
        cols = torch.arange(w)[None, :] // p
        grid = rows * pw + cols                                      # [H, W]
        unit = grid[None, None].expand(b, c, h, w).clone()
        return unit, int(math.ceil(h / p) * pw)
    sample = x.shape[1:]
    ids = torch.arange(int(np.prod(sample))).reshape(sample)
    unit = ids[None].expand_as(x).clone()
    unit[~real_mask(x, modality)] = -1
    return unit, int(ids.numel())


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two 1-d arrays (average ranks for ties); NaN if either is
    constant or has fewer than 3 elements."""
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    ra, rb = _rank(a) - (a.size + 1) / 2, _rank(b) - (b.size + 1) / 2
    return float(np.clip((ra @ rb) / math.sqrt((ra @ ra) * (rb @ rb)), -1.0, 1.0))


def _rank(a: np.ndarray) -> np.ndarray:
    """1-based ranks, ties get their average rank (scipy's ``rankdata``, without importing it)."""
    _, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
    start = np.cumsum(counts) - counts
    return (start + (counts + 1) / 2.0)[inverse]


def median(values: Any) -> float:
    """Median of the finite values (NaN when there are none)."""
    arr = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    arr = arr[np.isfinite(arr)]
    return float(np.median(arr)) if arr.size else float("nan")


def to_list(values: Any) -> list[float | None]:
    """Plain floats for JSON, with NaN and infinities as ``None``."""
    arr = np.asarray(values, dtype=float).ravel()
    return [float(v) if math.isfinite(v) else None for v in arr]
