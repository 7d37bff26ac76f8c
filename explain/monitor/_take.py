"""What a record reads from the every-step trackers: :class:`TrackerTake` (the device tensors
of :meth:`~explain.monitor._between.StepTracker.take`, finished on the host in plain Python), and
the ``between`` row of a record or of the steps after the last one. Part of
:mod:`explain.monitor._between`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from explain.monitor._losses import LossTake
from explain.monitor.history import LAYER_METRICS

__all__ = ["TrackerTake", "BETWEEN_KEYS", "CLIP_TOLERANCE", "append_between", "append_record",
           "between_row", "finish_tail"]

#: the per-record columns of ``History.between``
BETWEEN_KEYS = ("count", "grad_norm_max", "grad_norm_mean", "loss_max", "loss_mean",
                "update_ratio_max")

#: relative drop of the gradient norm between backward and step() that counts as clipping
#: (float32 round-off of a rescale is ~1e-7; clip_grad_norm_ scales by max_norm / (norm + 1e-6))
CLIP_TOLERANCE = 1e-3

_INF = float("inf")


@dataclass(frozen=True)
class TrackerTake:
    """What :meth:`StepTracker.take` hands to a record. ``tensors`` holds, in order: the
    folded ``[grad max, grad sum, grad count]`` (if ``folded_grad``), the folded largest
    ratio (if ``folded_ratio``), the per-parameter gradient norms of the ``counts`` steps not
    folded (flat), their loss scales (if ``scaled``), and the weight-norm readings
    ``[len(gaps) + 1, params]`` (flat) when ``gaps``."""

    steps: int
    tensors: list[torch.Tensor]
    folded_grad: bool
    folded_ratio: bool
    counts: tuple[int, ...]
    scaled: bool
    amp: bool
    gaps: tuple[int, ...]
    layers: tuple[tuple[int, ...], ...]  # per watched layer, its columns in the readings

    def finish(self, values: list[list[float]]) -> dict[str, float | None]:
        """The tracked statistics from the tensors' values (None where nothing was seen).

        Plain Python arithmetic: a few dozen values per record, where numpy's per-call cost
        on a cold cache (~200 us measured) would exceed the work."""
        it = iter(values)
        g_max, g_sum, g_n = next(it) if self.folded_grad else (-_INF, 0.0, 0.0)
        ratio = next(it)[0] if self.folded_ratio else None
        if self.counts:
            flat, pos, g = next(it), 0, []
            for n in self.counts:
                g.append(math.sqrt(math.fsum(v * v for v in flat[pos:pos + n])))
                pos += n
            if self.scaled:
                g = [v / scale for v, scale in zip(g, next(it))]
            if self.amp:  # overflowed steps, which the scaler skips, are left out
                g = [v for v in g if math.isfinite(v)]
            else:  # a NaN norm is a blow-up: counted as inf
                g = [_INF if math.isnan(v) else v for v in g]
            if g:
                g_max, g_sum, g_n = max(g_max, *g), g_sum + math.fsum(g), g_n + len(g)
        if self.gaps:
            top = _window_ratio(next(it), self.gaps, self.layers)
            ratio = top if ratio is None or math.isnan(ratio) else max(ratio, top)

        def num(v: float | None) -> float | None:
            return None if v is None or math.isnan(v) else v
        return {"grad_norm_max": num(g_max) if g_n else None,
                "grad_norm_mean": g_sum / g_n if g_n else None, "update_ratio_max": num(ratio)}


def _window_ratio(flat: list[float], gaps: tuple[int, ...],
                  layers: tuple[tuple[int, ...], ...]) -> float:
    """The largest windowed ratio (see :class:`StepTracker`) of the weight-norm readings
    ``[len(gaps) + 1, params]`` (flat); ``layers`` lists each layer's columns."""
    width = len(flat) // (len(gaps) + 1)
    rows = [flat[r * width:(r + 1) * width] for r in range(len(gaps) + 1)]
    norms_ = [[math.sqrt(math.fsum(row[c] * row[c] for c in cols)) for cols in layers]
              for row in rows]                                     # [readings + 1][layers]
    top = 0.0
    for k, prev, cur in zip(gaps, norms_, norms_[1:]):
        for p, c in zip(prev, cur):
            if math.isnan(p) or math.isnan(c):
                return _INF
            diff = abs(c - p)
            base = max(p, c) if k > 1 else p
            r = diff / (k * max(base, 1e-38)) if base > 0 else (_INF if diff > 0 else 0.0)
            top = max(top, r)
    return top


def between_row(tracked: TrackerTake, losses: LossTake,
                values: list[list[float]]) -> tuple[dict[str, Any], int]:
    """(the ``between`` values of one stretch, its non-finite losses) from the values of
    ``tracked.tensors`` then ``losses.tensors``."""
    n = len(tracked.tensors)
    bad, loss_max, loss_mean = losses.finish(values[n:])
    row = {"count": tracked.steps, **tracked.finish(values[:n]), "loss_max": loss_max,
           "loss_mean": loss_mean}
    return row, bad


def append_between(history: Any, tracked: TrackerTake, losses: LossTake, rec: Any) -> None:
    """Append to ``history.between`` what happened since the previous record (from a
    :class:`~explain.monitor._record.StepRecord` whose ``extra`` holds the values of
    ``tracked.tensors`` then ``losses.tensors``), add the non-finite losses, and note in
    ``history.meta`` whether the loop clipped the gradient of this record."""
    h = history
    row, bad = between_row(tracked, losses, rec.extra)
    h.nonfinite["loss"] += bad
    for key in BETWEEN_KEYS:
        h.between[key].append(row[key])
    before, after = rec.grad_norm_before, rec.grad_norm_after
    clipped = (before is not None and after is not None and math.isfinite(before)
               and after < before * (1 - CLIP_TOLERANCE))
    h.meta["clipped_records"] = h.meta.get("clipped_records", 0) + int(clipped)
    h.meta["clipping"] = h.meta["clipped_records"] > 0


def finish_tail(history: Any, tracked: TrackerTake, losses: LossTake, last_step: int) -> None:
    """At close: what happened after the last record (steps no record covers), read with one
    sync, into ``history.meta["between_tail"]`` (the ``between`` keys plus ``"step"``, the last
    step; None when the last step was a record), and its non-finite losses counted."""
    values = [t.tolist() for t in tracked.tensors + losses.tensors]
    row, bad = between_row(tracked, losses, values)
    history.nonfinite["loss"] += bad
    history.meta["between_tail"] = {"step": last_step, **row} if tracked.steps else None


def append_record(history: Any, k: int, rec: Any, layers: list[Any], tracked: TrackerTake,
                  losses: LossTake) -> None:
    """Append the record of step ``k`` (a :class:`~explain.monitor._record.StepRecord`) to
    ``history``: its ``between`` row, loss, per-layer metrics, observed activation kinds and
    non-finite counts (``layers``: the monitor's :class:`~explain.monitor._layers.LayerSpec`)."""
    h = history
    append_between(h, tracked, losses, rec)
    h.steps.append(k)
    h.step_loss.append(rec.loss)
    for spec in layers:
        for metric in LAYER_METRICS:
            h.layers[spec.name][metric].append(rec.layers[spec.name][metric])
        if spec.index in rec.activation_kinds:  # observed: overrides the static guess
            h.layer_info[spec.name]["activation"] = rec.activation_kinds[spec.index]
    for kind, count in rec.nonfinite.items():
        h.nonfinite[kind] += count
    if rec.amp_overflow_values:
        h.meta["amp_overflow_values"] = (h.meta.get("amp_overflow_values", 0)
                                         + rec.amp_overflow_values)
