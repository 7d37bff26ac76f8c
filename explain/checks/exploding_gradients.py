"""``exploding-gradients``: spikes against a running median, growth over training, AUTOTRAINER's
first/last layer ratio > 70, and gradients or weights that overflowed to inf/NaN.

The first three are ratios, so they do not depend on the model's size or the loss's scale.
Norms are read before clipping; when the loop clipped (``history.meta["clipping"]``), a spike
that is the only signal and came with a falling loss is an INFO: clipping, the remedy Pascanu et
al. propose, already bounded its update. A
spike (>= 10x the median of the previous sampled steps; with a logged loss only when the loss
jumped with it, as Pascanu et al. 2013 describe an explosion) or a 100x growth is a WARN; a 100x spike,
any signal with a loss that does not decrease (or went non-finite), or an overflow (AUTOTRAINER
also counts NaN weights as explosion) is a FAIL.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

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
    loss_change,
    loss_progress,
    pct,
    register_check,
)
from explain.checks.vanishing_gradients import first_last_ratio, weight_layer_grads
from explain.findings import Severity

__all__ = ["ExplodingGradients", "total_grad_norm", "spikes", "loss_jumps"]


def total_grad_norm(history: Any) -> list[float | None]:
    """Per sampled step, the norm over all layers: ``sqrt(sum_l grad_norm_l^2)``."""
    series = list(layer_series(history, "grad_norm").values())
    n = max((len(s) for s in series), default=0)
    out: list[float | None] = []
    for i in range(n):
        vals = finite([s[i] for s in series if i < len(s)])
        out.append(math.sqrt(sum(v * v for v in vals)) if vals else None)
    return out


#: sampled steps in one median of the reference scale: robust to two outliers among five
SCALE_WINDOW = 5


def spikes(norms: list[float | None], window: int,
           peaks: list[float | None] | None = None) -> list[float | None]:
    """Per record, its peak over a reference that does not collapse, from earlier records only.

    The reference is the larger of the running median of the (up to) ``window`` previous
    sampled norms and the highest median of any :data:`SCALE_WINDOW` consecutive earlier norms
    (the scale the run has established). The first record has nothing before it, so it is
    never a spike (Pascanu et al. 2013: an explosion is a norm that *grows*; the initial norm
    is the init's scale, and training often shrinks it within the first records); it still
    enters the running median as evidence, but never as a floor. ``peaks`` is the largest norm
    since the previous record, when the monitor tracked every step
    (``history.between["grad_norm_max"]``), so a spike between two samples is seen. A peak is
    then judged against earlier *peaks* (the same algorithm over the peak series), never
    against single sampled norms: the largest of ~``every`` per-step norms is naturally many
    times their median (a healthy GRU measured here has peaks 10x its sampled median; a run
    converging to a loss of 1e-4, 1e5x), so like is compared with like.

    A reference that never falls matters late in training: as the loss approaches zero the
    typical gradient norm shrinks by orders of magnitude while one hard batch still gives a
    gradient of the run's usual size, a 10x blip against the recent median that is no
    explosion. An explosion leaves the range the run has ever had.
    """
    if peaks is not None:  # peaks against earlier peaks (a sampled norm where none)
        norms = [v if p is None else p for v, p in zip(norms, peaks)]
    factors: list[float | None] = []
    seen: list[float] = []
    scale = 0.0
    for v in norms:
        if v is None or not seen:
            factors.append(None)
        else:
            ref = max(statistics.median(seen[-window:]), scale)
            factors.append(v / ref if ref > 0 else None)
        if v is not None:
            seen.append(v)
            if len(seen) >= SCALE_WINDOW:
                scale = max(scale, statistics.median(seen[-SCALE_WINDOW:]))
    return factors


def loss_jumps(losses: list[float | None], window: int) -> list[bool | None]:
    """Per record, whether the loss at it or at the next record rose above every loss of the
    ``window`` records before it (Pascanu et al. 2013: an exploding gradient shows as a jump
    of the loss, a 'cliff'); None where the loss is unknown."""
    out: list[bool | None] = []
    for i, v in enumerate(losses):
        before = [x for x in losses[max(0, i - window):i] if x is not None]
        after = [x for x in losses[i:i + 2] if x is not None]
        if v is None or not before or not after:
            out.append(None if v is None or not before else False)
            continue
        out.append(max(after) > max(before))
    return out


@register_check("exploding-gradients")
class ExplodingGradients(Check):
    """Look for gradient-norm spikes, growth over training and a large first/last layer ratio."""

    title = "Exploding gradients"
    thresholds = ("spike_factor", "spike_fail_factor", "growth_factor", "spike_window",
                  "exploding_ratio", "min_loss_progress")

    def compute(self, context: CheckContext) -> dict[str, Any]:
        norms = total_grad_norm(context.history)
        vals = finite(norms)
        counts = getattr(context.history, "nonfinite", None) or {}
        overflow = {k: int(counts.get(k) or 0) for k in ("grad", "weight")}
        if len(vals) < 5 and not any(overflow.values()):
            raise MissingInput(
                "The exploding-gradients check needs gradient norms at 5 or more sampled steps; "
                f"the history has {len(vals)}.",
                "Train under explain.TrainingMonitor(model) for longer, or sample more often "
                "(a smaller 'every').")
        steps = list(getattr(context.history, "steps", []) or range(len(norms)))
        tail = between_tail(context.history)
        if tail is not None and tail.get("grad_norm_max") is not None and \
                len(steps) == len(norms):  # the steps after the last record: a peak only
            steps, norms = steps + [tail["step"]], norms + [None]
        evidence = {"steps": steps, "total_grad_norm": norms, "overflow": overflow,
                    "max_norm": max(vals) if vals else None, "max_spike": None,
                    "max_spike_step": None, "n_spikes": 0, "growth": None,
                    "spike_factor_per_step": [None] * len(norms),
                    "loss": loss_progress(context.history)}
        pair = first_last_ratio(weight_layer_grads(context.history)) or {}
        evidence.update(first_last_ratio=pair.get("ratio"), first_layer=pair.get("first_layer"),
                        last_layer=pair.get("last_layer"),
                        ratio_per_step=pair.get("ratio_per_step") or [])
        if len(vals) >= 5:
            q = max(1, len(vals) // 4)
            early = statistics.median(vals[:q])
            factors, raw, peaks = self._spikes(context, norms)
            evidence["peak_grad_norm"] = peaks
            evidence["max_norm"] = max(finite((peaks or []) + vals))
            worst = max(range(len(factors)), key=lambda i: factors[i] or 0.0)
            quiet = [r for r, f in zip(raw, factors) if r is not None and f is None]
            evidence.update(
                spike_factor_per_step=factors, raw_spike_factor_per_step=raw,
                max_spike=factors[worst], max_quiet_spike=max(quiet, default=None),
                max_spike_step=steps[worst] if worst < len(steps) else worst,
                n_spikes=sum(1 for f in factors
                             if f is not None and f >= context.threshold("spike_factor")),
                growth=statistics.median(vals[-q:]) / early if early > 0 else None,
                early_norm=early)
        return evidence

    @staticmethod
    def _spikes(context: CheckContext, norms: list[float | None]) -> tuple[list, list, Any]:
        """(spike factors that count, all spike factors, peak norms or None): a spike counts
        when the loss jumped with it (:func:`loss_jumps`) or the loss is unknown."""
        window = int(context.threshold("spike_window"))
        between = getattr(context.history, "between", None) or {}
        tail = between_tail(context.history)
        extra = [tail] if tail is not None and len(norms) == len(between.get("grad_norm_max")
                                                                 or []) + 1 else []
        peaks = list(between.get("grad_norm_max") or []) + [t["grad_norm_max"] for t in extra] \
            or None
        if peaks is not None and len(peaks) != len(norms):
            peaks = None
        raw = spikes(norms, window, peaks=peaks)
        losses = list(between.get("loss_max") or []) + [t.get("loss_max") for t in extra]
        if len(losses) != len(norms) or not finite(losses):
            losses = list(getattr(context.history, "step_loss", None) or []) + [None] * len(extra)
        jumps = loss_jumps(losses, window) if len(losses) == len(norms) else [None] * len(norms)
        return [None if j is False else f for f, j in zip(raw, jumps)], raw, peaks

    def onset(self, evidence: dict[str, Any], context: CheckContext) -> Onset:
        t, steps = context.threshold, evidence["steps"]
        spike = first_step_where(steps, [f is not None and f >= t("spike_factor")
                                         for f in evidence["spike_factor_per_step"]])
        if spike is not None:
            return Onset(spike)
        ratio = first_step_where(steps, [r is not None and r > t("exploding_ratio")
                                         for r in evidence["ratio_per_step"]])
        if ratio is not None:
            return Onset(ratio)
        early = evidence.get("early_norm")
        if evidence["growth"] and early:  # halfway (in log scale) to the growth threshold
            level = early * t("growth_factor") ** 0.5
            return Onset(first_step_where(steps, [v is not None and v >= level
                                                  for v in evidence["total_grad_norm"]],
                                          sustained=True))
        return Onset()

    def grade(self, evidence: dict[str, Any], context: CheckContext) -> tuple[Severity, str, str]:
        t = context.threshold
        spike, growth, ratio = (evidence["max_spike"] or 0.0, evidence["growth"] or 0.0,
                                evidence["first_last_ratio"])
        overflow = evidence["overflow"]
        signals = []
        if any(overflow.values()):
            signals.append(f"{overflow['grad']} gradient and {overflow['weight']} weight values "
                           "overflowed to inf/NaN")
        if spike >= t("spike_factor"):
            signals.append(f"the total gradient norm spiked to {fmt(evidence['max_norm'])}, "
                           f"{fmt(spike)} times its running median (floored at the run's established scale; "
                           f"{evidence['n_spikes']} "
                           f"spikes >= {fmt(t('spike_factor'))}x)")
        if growth >= t("growth_factor"):
            signals.append(f"it grew {fmt(growth)}x from the first to the last quarter of "
                           "training")
        if ratio is not None and ratio > t("exploding_ratio"):
            signals.append(f"the first layer's gradient norm is {fmt(ratio)} times the last "
                           f"layer's (> {fmt(t('exploding_ratio'))})")
        if not signals:
            ratio_text = "" if ratio is None else \
                f", and the first/last layer ratio is {fmt(ratio)} (<= {fmt(t('exploding_ratio'))})"
            quiet = evidence.get("max_quiet_spike") or 0.0
            largest = (f"the largest spike, {fmt(quiet)}x the running median (floored at the "
                       "run's established scale), came without a jump of the loss (a hard "
                       "batch, not an explosion)" if quiet >= t("spike_factor") else
                       f"the largest spike is {fmt(max(spike, quiet))}x the running median "
                       f"(floored at the run's established scale; < {fmt(t('spike_factor'))}x)")
            return (Severity.PASS, f"No exploding gradients: {largest}, the norm changed "
                    f"{fmt(growth)}x from the first to the last quarter{ratio_text}.", "")
        loss = evidence["loss"]
        bad_loss = loss is not None and (loss["diverged"]
                                         or loss["progress"] < t("min_loss_progress"))
        severe = spike >= t("spike_fail_factor") or any(overflow.values())
        severity = Severity.FAIL if severe or bad_loss else Severity.WARN
        clipped = bool((getattr(context.history, "meta", None) or {}).get("clipping"))
        if severity is Severity.WARN and clipped and len(signals) == 1 and \
                spike >= t("spike_factor"):
            # Pascanu et al. 2013: clipping is the remedy for exploding gradients, and this
            # loop applies it; the spike (before clipping) was contained and the loss fell
            progress = "" if loss is None else f", and the loss still fell {pct(loss['progress'])}"
            return (Severity.INFO, "Gradient spikes contained by clipping: before clipping, "
                    + signals[0] + f"; the loop clipped its gradients{progress}.",
                    "Clipping bounds these updates. If the run learns too little, remove their "
                    "cause: a lower learning rate, or a gated cell (LSTM/GRU) for a vanilla RNN.")
        tail = ""
        if loss is not None and loss["diverged"]:
            tail = "; the loss went non-finite"
        elif bad_loss:
            tail = f"; {loss_change(loss['progress'])}"
        return (severity, "Gradients explode: " + "; ".join(signals) + tail + ".",
                "Clip gradients (torch.nn.utils.clip_grad_norm_), use a lower learning rate or "
                "Adam/RMSProp; for recurrent nets use LSTM/GRU; batch norm and residual "
                "connections also stabilize training.")
