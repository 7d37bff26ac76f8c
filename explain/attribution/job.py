"""The :class:`Job` every attribution method works on, and the :class:`Chunk` of it one call
of a method's ``_attribute`` sees (built by :func:`~.prepare.prepare`, used by :mod:`.base`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from explain.attribution.batching import BatchPlan
from explain.attribution.footprint import Footprint
from explain.attribution.structure import Trace
from explain.card import ModelCard

__all__ = ["Job", "Chunk"]


@dataclass
class Job:
    """Everything a method needs, prepared once by :meth:`Explainer.explain`.

    ``x`` is what gets differentiated: the inputs, or for token ids the embedding layer's
    output ``[batch, tokens, dim]``; then ``forward(x, ids, *extra)`` replaces that output.
    """

    model: nn.Module
    card: ModelCard | None
    modality: str
    inputs: torch.Tensor                  # the user's inputs, on the model's device
    x: torch.Tensor                       # [batch, ...] the space attributions are computed in
    baselines: torch.Tensor               # same shape as x
    args: tuple                           # extra forward args (token ids first, for text)
    forward: Callable[..., torch.Tensor]  # forward(x, *args) -> logits [batch, classes]
    target: torch.Tensor                  # [batch] int64
    trace: Trace | None = None         # the structure trace, made on first use: structure()
    token_ids: torch.Tensor | None = None
    pad_id: int = 0                       # padding id of token_ids (0 attribution, hidden)
    baseline_ids: torch.Tensor | None = None  # token ids the baseline embeds
    batch_size: int | None = None
    memory_budget: int | None = None
    warnings: list[str] = field(default_factory=list)
    plan: BatchPlan | None = None         # set by the batching step
    probe_s: float = 0.0                  # seconds of the 4-sample footprint (0 if cached)
    steps: list[torch.Tensor] = field(default_factory=list)  # per chunk, auto-step methods
    unconverged: list[torch.Tensor] = field(default_factory=list)  # per chunk, bool [chunk]
    #: made when first needed and cached per model by :func:`~.prepare.prepare`: what a
    #: forward of 4 samples stores (it plans a new shape), and the structure trace
    measurer: Callable[[], Footprint] | None = None
    tracer: Callable[[], Trace] | None = None
    #: the input checks a remembered answer skipped (:func:`~.preflight.accepted_classes`),
    #: run again when the attribution raises a model error; None when they all ran
    recheck: Callable[[], None] | None = None

    def footprint(self) -> Footprint | None:
        """What a forward of the first 4 samples stored (measured on first use)."""
        return self.measurer() if self.measurer is not None else None

    def structure(self) -> Trace:
        """The one-sample structure trace, traced when first needed (rule-based methods,
        cuDNN) and cached per model by :func:`~.prepare.prepare`."""
        if self.trace is None:
            self.trace = self.tracer() if self.tracer is not None else Trace()
        return self.trace


@dataclass
class Chunk:
    """Samples ``lo:hi`` of a :class:`Job`."""

    x: torch.Tensor
    baselines: torch.Tensor
    target: torch.Tensor
    args: tuple
