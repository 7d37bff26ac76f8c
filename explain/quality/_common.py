"""Helpers shared by the trust metrics: method families, batched forwards, feature units.

Modality inference, device look-up and the model guard are the shared ones in
:mod:`explain._core` (:func:`~explain._core.tensors.infer_modality`,
:func:`~explain._core.tensors.device_of`, :class:`~explain._core.guard.ModelGuard`).

A *feature unit* is what faithfulness curves remove or insert at once and what rank correlations
compare: a pixel patch (all channels) for images, one (frame, feature) cell of a real frame for
sequences, one non-pad token for text, one feature for tabular inputs. Padding (trailing all-zero
frames, token id 0) is never a unit, so it is never perturbed and never inflates a correlation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from explain._core.tensors import device_of
from explain.attribution.result import Attribution
from explain.card import Modality
from explain.errors import DataMismatchError, InvalidInputError

__all__ = [
    "ExplainFn",
    "COMPLETE_METHODS",
    "MULTIPLY_BY_INPUTS",
    "TOKEN_NOISE_NOTE",
    "class_scores",
    "attribution_values",
    "feature_units",
    "real_mask",
    "default_baseline",
    "float_baseline",
    "spread",
    "chunk_size",
    "spearman",
    "median",
    "to_list",
]

#: ``explain_fn(model, inputs, target) -> values`` recomputes an explanation (sanity, sensitivity).
ExplainFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]

#: Methods whose attributions should sum to f(x) - f(baseline).
COMPLETE_METHODS = frozenset({
    "integrated_gradients", "layer_integrated_gradients", "deeplift", "deeplift_shap",
    "gradient_shap", "shap_deep", "shap_gradient", "shap_kernel", "shapley_value_sampling",
    "lrp",
})
#: Methods whose maps are "global" (already multiplied by input - baseline).
MULTIPLY_BY_INPUTS = COMPLETE_METHODS | frozenset({
    "input_x_gradient", "occlusion", "feature_ablation", "lime", "feature_permutation",
})
#: Why noise-based metrics (infidelity, sensitivity) skip text inputs.
TOKEN_NOISE_NOTE = "not defined for token ids (they cannot be nudged by noise)"


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


def _frames(x: torch.Tensor, modality: Modality) -> bool:
    """Whether ``x`` is frames ``[batch, time, features]`` whose trailing all-zero frames are
    padding: sequences, and audio frames ``[batch, frames, mels]`` (recurrent models)."""
    return modality is Modality.SEQUENCE or (modality is Modality.AUDIO and x.dim() == 3)


def real_mask(x: torch.Tensor, modality: Modality, pad_id: int = 0) -> torch.Tensor:
    """Bool mask ``x.shape``: True where an element is real data, False where it is padding
    (trailing all-zero frames of sequences and audio frames, ``pad_id`` of tokens)."""
    if modality is Modality.TEXT:
        return x != pad_id
    if _frames(x, modality):
        nonzero = (x != 0).any(-1)                                   # [B, T]
        t = torch.arange(x.shape[1])
        last = torch.where(nonzero, t, torch.full_like(t, -1)).max(1).values  # [B]
        frames = t[None, :] <= last[:, None]                         # [B, T]
        return frames[:, :, None].expand_as(x)
    return torch.ones_like(x, dtype=torch.bool)


def default_baseline(x: torch.Tensor, modality: Modality, pad_id: int = 0) -> torch.Tensor:
    """The reference input when the attribution has none: ``pad_id`` for tokens; for sequences
    and audio frames 1e-6 in real frames (an all-zero baseline would be an empty sequence and
    change the length the model derives, as :func:`explain.attribute` does); zeros otherwise."""
    if _frames(x, modality):
        return real_mask(x, modality).to(x.dtype) * 1e-6
    if modality is Modality.TEXT:
        return torch.full_like(x, pad_id)
    return torch.zeros_like(x)


def float_baseline(inputs: torch.Tensor, baselines: torch.Tensor | None,
                   modality: Modality, pad_id: int = 0) -> torch.Tensor:
    """Float baselines shaped like ``inputs``: the attribution's own, the mean of a baseline
    distribution, else :func:`default_baseline`."""
    if baselines is not None and baselines.shape == inputs.shape:
        return baselines.detach().cpu().float()
    if baselines is not None and baselines.dim() == inputs.dim() and \
            baselines.shape[1:] == inputs.shape[1:]:
        return baselines.detach().cpu().float().mean(0, keepdim=True).expand_as(inputs).clone()
    return default_baseline(inputs, modality, pad_id).float()


def spread(inputs: torch.Tensor, mask: torch.Tensor) -> float:
    """Standard deviation of the real elements of ``inputs`` (1.0 when it is 0 or undefined):
    the scale noise radii are relative to."""
    real = inputs[mask]
    s = float(real.float().std()) if real.numel() > 1 else 0.0
    return s if s > 0 else 1.0


def chunk_size(batch_size: int, inputs: torch.Tensor, n_perturb: int) -> int:
    """captum's ``max_examples_per_batch``; it wants ``n <= value <= n * n_perturb``."""
    n = inputs.shape[0]
    return max(n, min(batch_size, n * n_perturb))


def feature_units(x: torch.Tensor, modality: Modality, patch_size: int | None = None,
                  pad_id: int = 0) -> tuple[torch.Tensor, int]:
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
    unit[~real_mask(x, modality, pad_id)] = -1
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
