"""The typed result of :func:`explain.attribute`."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class Attribution:
    """Attribution scores for a batch of inputs.

    Attributes
    ----------
    values : same shape as the inputs (``[batch, *sample_shape]``); for integer token ids,
        one score per token (``[batch, tokens]``), summed over the embedding dimension.
    method : the method that produced ``values`` (after any fallback).
    target : ``[batch]`` int64, the class explained for each sample.
    inputs : the inputs explained (detached, on CPU).
    baselines : the baselines used, or ``None`` for baseline-free methods.
    convergence_delta : ``[batch]`` for integrated gradients / deeplift, else ``None``.
    warnings : what was adapted (fallbacks, cuDNN switched off, chunking, ...).
    timings : seconds per stage, e.g. ``{"preflight": ..., "attribute": ...}``.
    requested_method : the method the caller asked for.
    """

    values: torch.Tensor
    method: str
    target: torch.Tensor
    inputs: torch.Tensor
    baselines: torch.Tensor | None = None
    convergence_delta: torch.Tensor | None = None
    warnings: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    requested_method: str = ""
