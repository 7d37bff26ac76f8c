"""The typed result of :func:`explain.attribute`."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from explain.attribution.batching import BatchPlan


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
    timings : seconds per stage (``"preflight"``, ``"probe"`` (the measured 4-sample footprint, 0
        when the plan was cached), ``"attribute"``, ``"total"``) and ``"rows_per_pass"``.
    requested_method : the method the caller asked for.
    plan : the batch plan used (rows per pass, measured bytes per row, budget, rule).
    steps : ``[batch]`` int64 model evaluations per sample for ``n_steps="auto"`` integrated
        gradients, else ``None``.
    pad_id : the padding id of token-id inputs (their positions scored exactly 0), ``None``
        for inputs that are not token ids. Trust metrics and reports read it.
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
    plan: BatchPlan | None = None
    steps: torch.Tensor | None = None
    pad_id: int | None = None
