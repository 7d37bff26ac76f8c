"""``unstable-training``: divergence and instability, the cause that other findings follow.

A learning rate that is too high shows first in the loss and in the size of the updates, and only
later in its after-effects (dead ReLUs, saturated units, a loss stuck at chance). Signals:

* the loss rises above ``unstable_loss_factor`` (4) times its first recorded value (the loss
  of the initial weights when the record is step 0): at its peaks
  (spikes; the largest loss since the previous record when the monitor tracked every step) is a
  WARN, over the last quarter of training (divergence) or to NaN/inf a FAIL. The anchor is
  fastai's learning-rate finder, which stops when the loss exceeds 4x its best; the start is
  used rather than the best, because a converging run's best loss falls towards zero and any
  later batch is many times it;
* the loss returns to chance level ``ln K`` (K classes) after it had fallen below half of it:
  what was learned is lost (WARN);
* the largest layer's update-to-weight ratio ``||dW|| / ||W||`` per step, median over the
  records, above ``unstable_update_ratio`` (0.1): a hundred times Karpathy's ~1e-3 rule of
  thumb (WARN).

Two losses are enough to judge: the start and a later one. Every signal compares a loss with
the start (or chance), not with a fitted trend, and the monitor's running maximum covers every
step since the previous record, so a short run with a few records (a 3-epoch run whose loss
jumped 1000x in its first epoch and then sat at chance) has its evidence too.

The remedy says by how much to lower the learning rate, from the update ratio when it was
recorded (its factor over 1e-3), else 10x (fastai picks a rate about 10x below divergence).
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from torch import nn

from explain.checks.base import (
    Check,
    CheckContext,
    MissingInput,
    Onset,
    between_tail,
    finite,
    first_step_where,
    fmt,
    layer_series,
    register_check,
)
from explain.findings import Severity

__all__ = ["UnstableTraining", "num_classes"]

HEALTHY_UPDATE_RATIO = 1e-3  # Karpathy's rule of thumb for ||dW|| / ||W|| per step


def num_classes(history: Any, model: Any) -> int | None:
    """K for the chance level ln K: ``history.meta["num_classes"]``, else the output size of
    the model's last ``nn.Linear`` (None when below 2 or unknown)."""
    meta = getattr(history, "meta", None) or {}
    k = meta.get("num_classes")
    if not isinstance(k, int) and isinstance(model, nn.Module):
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        k = linears[-1].out_features if linears else None
    return k if isinstance(k, int) and k >= 2 else None


def _losses(history: Any) -> tuple[list[Any], list[float | None], list[float | None], str]:
    """(steps, typical loss per record, peak loss per record, source): the sampled steps'
    losses (with the running maximum of every step between them) when there are 5 or more,
    or at least as many as epoch losses; else the epochs' training losses."""
    steps = list(getattr(history, "steps", None) or [])
    loss = list(getattr(history, "step_loss", None) or [])
    epochs = getattr(history, "epochs", None) or {}
    train = list(epochs.get("train_loss") or [])
    n = len(finite(loss))
    if n >= 5 or (n >= 2 and n >= len(finite(train))):
        between = getattr(history, "between", None) or {}
        peaks = list(between.get("loss_max") or [])
        peaks = peaks if len(peaks) == len(loss) else list(loss)
        tail = between_tail(history)
        if tail is not None and tail.get("loss_max") is not None and len(steps) == len(loss):
            # the steps after the last record: a peak, no sampled loss
            steps, loss, peaks = steps + [tail["step"]], loss + [None], peaks + [tail["loss_max"]]
        return steps, loss, peaks, "step_loss"
    return list(epochs.get("epoch") or []), train, train, "train_loss"


def _max_update_ratio(history: Any) -> list[float | None]:
    """Per record, the largest layer's update-to-weight ratio (from the monitor's running
    maximum over every step when recorded)."""
    between = getattr(history, "between", None) or {}
    tracked = list(between.get("update_ratio_max") or [])
    series = list(layer_series(history, "update_ratio").values())
    n = max((len(s) for s in series), default=0)
    out = [max(finite([s[i] for s in series if i < len(s)]), default=None) for i in range(n)]
    if tracked and len(tracked) == n:
        out = [max(finite([a, b]), default=None) for a, b in zip(out, tracked)]
    return out


@register_check("unstable-training")
class UnstableTraining(Check):
    """Loss rising far above its start or back to chance, and updates far above ~1e-3."""

    title = "Unstable training"
    thresholds = ("unstable_loss_factor", "unstable_update_ratio")

    def compute(self, context: CheckContext) -> dict[str, Any]:
        h = context.history
        steps, loss, peaks, source = _losses(h)
        vals = finite(loss)
        counts = getattr(h, "nonfinite", None) or {}
        nonfinite = int(counts.get("loss") or 0)
        if len(vals) < 2 and not nonfinite:  # a start and something to compare with it
            have = max(len(vals), len(finite(getattr(h, "step_loss", None))))
            raise MissingInput(
                "The unstable-training check needs the loss at 2 or more sampled steps (or "
                f"epochs): its start and a later one; the history has {have}.",
                "Pass the loss to the monitor: mon.step(loss=loss.detach()), or log train_loss "
                "with mon.log_epoch(...).")
        start = vals[0] if vals else None  # the loss before the first update (or epoch 1)
        q = max(1, len(vals) // 4)
        k = num_classes(h, context.model)
        ratios = _max_update_ratio(h)
        known = finite(ratios)
        return {"steps": steps, "loss": loss, "peak_loss": peaks, "source": source,
                "start": start, "end": statistics.median(vals[-q:]) if vals else None,
                "min_loss": min(vals) if vals else None,
                "max_loss": max(finite(list(peaks) + vals)) if vals else None,
                "nonfinite_loss": nonfinite, "num_classes": k,
                "chance": math.log(k) if k else None, "update_ratio": ratios,
                "median_update_ratio": statistics.median(known) if known else None}

    @staticmethod
    def _spikes(evidence: dict[str, Any], factor: float) -> list[bool]:
        start = evidence["start"]
        return [start is not None and v is not None and math.isfinite(v) and v > factor * start
                for v in evidence["peak_loss"]]

    def onset(self, evidence: dict[str, Any], context: CheckContext) -> Onset:
        factor = context.threshold("unstable_loss_factor")
        steps, by_epoch = evidence["steps"], evidence["source"] == "train_loss"
        first = first_step_where(steps, self._spikes(evidence, factor))
        if first is None and evidence["median_update_ratio"] is not None:
            limit = context.threshold("unstable_update_ratio")
            first = first_step_where(steps, [r is not None and r > limit
                                             for r in evidence["update_ratio"]])
        if first is None and evidence["chance"] is not None:
            first = first_step_where(steps, [v is not None and v >= evidence["chance"]
                                             for v in evidence["loss"]], sustained=True)
        return Onset(epoch=first) if by_epoch else Onset(step=first)

    def grade(self, evidence: dict[str, Any], context: CheckContext) -> tuple[Severity, str, str]:
        factor = context.threshold("unstable_loss_factor")
        limit = context.threshold("unstable_update_ratio")
        start, end, chance = evidence["start"], evidence["end"], evidence["chance"]
        n_spikes = sum(self._spikes(evidence, factor))
        diverged = evidence["nonfinite_loss"] > 0 or (
            start is not None and end is not None and end > factor * start)
        lost = (chance is not None and end is not None and evidence["min_loss"] is not None
                and end >= chance and evidence["min_loss"] <= chance / 2)
        ratio = evidence["median_update_ratio"]
        big_updates = ratio is not None and ratio > limit
        signals = []
        if evidence["nonfinite_loss"]:
            signals.append(f"the loss went non-finite ({evidence['nonfinite_loss']} steps)")
        if diverged and end is not None and start is not None and end > factor * start:
            signals.append(f"the loss diverged: {fmt(end)} over the last quarter, "
                           f"{fmt(end / start)}x its start {fmt(start)} (> {fmt(factor)}x)")
        elif n_spikes:
            signals.append(f"the loss spiked to {fmt(evidence['max_loss'])}, "
                           f"{fmt(evidence['max_loss'] / start)}x its start {fmt(start)} "
                           f"(> {fmt(factor)}x) at {n_spikes} records")
        if lost:
            signals.append(f"it fell to {fmt(evidence['min_loss'])} and returned to chance level "
                           f"ln {evidence['num_classes']} = {fmt(chance)} ({fmt(end)} at the end)")
        if big_updates:
            signals.append(f"the largest update-to-weight ratio per step is {fmt(ratio)} "
                           f"(median; > {fmt(limit)}, ~{fmt(HEALTHY_UPDATE_RATIO)} is healthy)")
        if not signals:
            ratio_text = "" if ratio is None else \
                f", and the update-to-weight ratio is {fmt(ratio)} (median; <= {fmt(limit)})"
            peak = evidence["max_loss"]
            return (Severity.PASS, f"Stable training: the loss peaked at {fmt(peak)}, "
                    f"{fmt(peak / start if start else None)}x its start (<= {fmt(factor)}x)"
                    f"{ratio_text}.", "")
        severity = Severity.FAIL if diverged else Severity.WARN
        return (severity, "Unstable training: " + "; ".join(signals) + ".",
                self._remedy(ratio))

    @staticmethod
    def _remedy(ratio: float | None) -> str:
        if ratio is not None and ratio > HEALTHY_UPDATE_RATIO:
            by = f"about {fmt(max(2.0, ratio / HEALTHY_UPDATE_RATIO))}x (the update-to-weight " \
                 f"ratio {fmt(ratio)} is that many times the ~1e-3 rule of thumb)"
        else:
            by = "about 10x (fastai picks a rate ~10x below the one where the loss diverges)"
        return (f"Lower the learning rate by {by}; add a learning-rate warm-up over the first "
                "few hundred steps, and clip gradients (torch.nn.utils.clip_grad_norm_, e.g. "
                "max_norm=1.0).")
