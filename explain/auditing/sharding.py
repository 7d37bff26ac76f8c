"""An audit sharded across the processes of ``torch.distributed`` (launched by ``torchrun``).

What is sharded, and how the pieces come back in the single-process order:

- **predict**: every rank scores its contiguous slice of the evaluated data
  (:func:`explain._core.distributed.shard`); the logits are all-gathered and concatenated in
  rank order, so every rank holds the same ``[n, classes]`` logits as one process would.
- **explanations, attribution**: every rank attributes its contiguous slice of the samples to
  explain, with every method; the per-sample values (and targets, inputs, baselines,
  convergence deltas, step counts) are all-gathered and concatenated in rank order into one
  :class:`explain.Attribution` per method.
- **explanations, trust grade**: :func:`explain.evaluate` draws seeded random orders over all
  the samples together, so it is not split by sample (that would change its numbers): method
  ``i`` is graded whole on rank ``i % world_size``, and the grades are gathered on rank 0.

Every other stage (checks, performance, the four questions, the card) runs on rank 0 alone;
rank 0's report is then broadcast, so :func:`explain.audit` returns the same report on every
rank and equals the single-process report (timings aside). Only rank 0 should write it.

In one process every helper here is the plain single-process computation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from explain._core import distributed as dist
from explain._core import tensors

__all__ = ["predict", "Attributed", "attribute_methods", "grade_methods"]


def predict(net: nn.Module, x: torch.Tensor, *, owner: str) -> torch.Tensor:
    """Logits ``[n, classes]`` of ``x``: each rank scores its shard, all ranks get all of them."""
    if dist.world_size() == 1:
        return tensors.predict(net, x, owner=owner)
    part = dist.shard(x.shape[0])
    mine = tensors.predict(net, x[part.start:part.stop], owner=owner) if len(part) else None
    parts = [p for p in dist.all_gather_objects(mine) if p is not None]
    return torch.cat(parts)


@dataclass(frozen=True)
class Attributed:
    """One method's attribution of every explained sample, or the error that stopped it."""

    method: str
    attribution: Any = None          # explain.Attribution over all samples, in order
    error: str = ""
    seconds: float = 0.0             # the slowest rank's wall time


def _attribute_shard(attribute: Callable[..., Any], model: nn.Module, xs: torch.Tensor,
                     pred: torch.Tensor, method: str) -> tuple[Any, str, float]:
    t0 = time.perf_counter()
    if xs.shape[0] == 0:
        return None, "", 0.0
    try:
        attr = attribute(model, xs, target=pred, method=method)
    except Exception as exc:  # an explainer failing becomes an error entry, not a crash
        return None, f"{type(exc).__name__}: {exc}", time.perf_counter() - t0
    return attr, "", time.perf_counter() - t0


def _cat(parts: list[Any], name: str) -> torch.Tensor | None:
    values = [getattr(p, name) for p in parts]
    if any(v is None for v in values):
        return None
    return torch.cat([v.detach().cpu() for v in values])


def _merge(method: str, shards: list[tuple[Any, str, float]]) -> Attributed:
    """The rank-ordered shards of one method as one :class:`explain.Attribution`."""
    from explain.attribution.result import Attribution

    seconds = max(s for _, _, s in shards)
    errors = [e for _, e, _ in shards if e]
    if errors:
        return Attributed(method, error=errors[0], seconds=seconds)
    parts = [a for a, _, _ in shards if a is not None]
    first = parts[0]
    warnings = tuple(dict.fromkeys(w for p in parts for w in p.warnings))
    merged = Attribution(
        values=torch.cat([p.values.detach().cpu() for p in parts]), method=first.method,
        target=torch.cat([p.target.detach().cpu() for p in parts]),
        inputs=torch.cat([p.inputs.detach().cpu() for p in parts]),
        baselines=_cat(parts, "baselines"), convergence_delta=_cat(parts, "convergence_delta"),
        warnings=warnings, timings=dict(first.timings), requested_method=first.requested_method,
        plan=first.plan, steps=_cat(parts, "steps"))
    return Attributed(method, attribution=merged, seconds=seconds)


def attribute_methods(attribute: Callable[..., Any], model: nn.Module, xs: torch.Tensor,
                      pred: torch.Tensor, methods: Sequence[str]) -> list[Attributed]:
    """Each method's attribution of ``xs`` (targets ``pred``), the samples sharded over ranks.

    One all-gather for all the methods; every rank returns the same merged results.
    """
    part = dist.shard(xs.shape[0])
    xs_r, pred_r = xs[part.start:part.stop], pred[part.start:part.stop]
    if dist.world_size() == 1:
        return [_merge(m, [_attribute_shard(attribute, model, xs, pred, m)]) for m in methods]
    mine = [_attribute_shard(attribute, model, xs_r, pred_r, m) for m in methods]
    every = dist.all_gather_objects(mine)              # [rank][method]
    return [_merge(m, [every[r][i] for r in range(len(every))]) for i, m in enumerate(methods)]


def grade_methods(grade: Callable[[Any], dict[str, Any]],
                  attributed: Sequence[Attributed]) -> list[dict[str, Any] | None]:
    """``grade(attribution)`` of each attributed method, method ``i`` on rank ``i % world``.

    Returns the grades in method order on every rank (``None`` for a method that erred).
    """
    world, me = dist.world_size(), dist.rank()
    mine = {i: grade(a.attribution) for i, a in enumerate(attributed)
            if a.error == "" and i % world == me}
    merged: dict[int, dict[str, Any]] = {}
    for part in dist.all_gather_objects(mine):
        merged.update(part)
    return [merged.get(i) for i in range(len(attributed))]
