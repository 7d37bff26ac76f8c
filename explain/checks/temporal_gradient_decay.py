"""``temporal-gradient-decay``: back-propagation through time loses (or blows up) the gradient.

The monitor samples the BPTT curve ``|d loss / d x_t|`` per time step (sequence models). The ratio
first step / last step (the last step with a non-zero gradient, so trailing padding is ignored),
median over the sampled curves, is graded like AUTOTRAINER's depth ratio but along time:
< 1e-3 vanishes, > 70 explodes. With a loss that does not decrease it is a FAIL; with a loss that
fell by ``temporal_fit_progress`` (90%) or more it is an INFO: the decay did not keep the run from
learning its task (Bengio et al. 1994; Pascanu et al. 2013), e.g. a gated RNN whose early records
still carry its initial decay.
"""

from __future__ import annotations

from typing import Any

from explain.checks.base import (
    Check,
    CheckContext,
    MissingInput,
    Onset,
    finite,
    first_step_where,
    fmt,
    loss_change,
    loss_progress,
    median,
    register_check,
)
from explain.findings import Severity

__all__ = ["TemporalGradientDecay", "first_last_time_ratio"]


def first_last_time_ratio(curve: list[Any]) -> float | None:
    """``|g_0| / |g_last|`` where ``g_last`` is the last positive finite value of ``curve``."""
    vals = [v if finite([v]) else None for v in curve]
    if not vals or vals[0] is None:
        return None
    last = next((float(v) for v in reversed(vals) if v is not None and float(v) > 0), None)
    return float(vals[0]) / last if last else None


@register_check("temporal-gradient-decay")
class TemporalGradientDecay(Check):
    """Compare the input gradient at the first time step with the one at the last."""

    title = "Temporal gradient decay"
    thresholds = ("temporal_ratio", "temporal_growth", "min_loss_progress",
                  "temporal_fit_progress")

    def compute(self, context: CheckContext) -> dict[str, Any]:
        records = [r for r in getattr(context.history, "temporal", None) or []
                   if isinstance(r, dict) and len(r.get("grad_norm") or []) >= 2]
        ratios = [first_last_time_ratio(list(r["grad_norm"])) for r in records]
        if not finite(ratios):
            raise MissingInput(
                "No per-time-step gradients were recorded (history.temporal is empty), so the "
                "temporal-gradient-decay check does not apply; it needs a sequence model.",
                "For recurrent/sequence models, train under explain.TrainingMonitor(model), "
                "which samples |d loss / d x_t| per time step (the BPTT curve).")
        return {"steps": [r.get("step") for r in records],
                "curves": [list(r["grad_norm"]) for r in records], "ratio_per_record": ratios,
                "ratio": median(ratios), "time_steps": max(len(r["grad_norm"]) for r in records),
                "loss": loss_progress(context.history)}

    def onset(self, evidence: dict[str, Any], context: CheckContext) -> Onset:
        low, high = context.threshold("temporal_ratio"), context.threshold("temporal_growth")
        return Onset(first_step_where(evidence["steps"], [
            r is not None and not low <= r <= high for r in evidence["ratio_per_record"]]))

    def grade(self, evidence: dict[str, Any], context: CheckContext) -> tuple[Severity, str, str]:
        low, high = context.threshold("temporal_ratio"), context.threshold("temporal_growth")
        ratio, loss = evidence["ratio"], evidence["loss"]
        stalled = loss is not None and (loss["diverged"] or
                                        loss["progress"] < context.threshold("min_loss_progress"))
        base = (f"the gradient reaching the first time step is {fmt(ratio)} times the one at the "
                f"last (median over {len(finite(evidence['ratio_per_record']))} sampled steps, "
                f"{evidence['time_steps']} time steps)")
        loss_text = "" if loss is None else f", and {loss_change(loss['progress'])}"
        fitted = loss is not None and not loss["diverged"] and \
            loss["progress"] >= context.threshold("temporal_fit_progress")
        severity = Severity.FAIL if stalled else Severity.INFO if fitted else Severity.WARN
        if fitted and not low <= ratio <= high:
            way = "vanish" if ratio < low else "explode"
            return (severity, f"Gradients {way} through time ({base}, outside [{fmt(low)}, "
                    f"{fmt(high)}]), but {loss_change(loss['progress'])}: the run learned its "
                    f"task through it.",
                    "Nothing to fix for this task; if it needs memory over more time steps, use "
                    "an LSTM/GRU, gradient clipping or shorter sequences.")
        if ratio < low:
            return (severity, f"Gradients vanish through time: {base}, below {fmt(low)}"
                    f"{loss_text}.",
                    "Use an LSTM/GRU instead of a vanilla RNN, gradient clipping and Xavier "
                    "(orthogonal) init; shorten the sequences or add residual connections.")
        if ratio > high:
            return (severity, f"Gradients explode through time: {base}, above {fmt(high)}"
                    f"{loss_text}.",
                    "Use gradient clipping and a lower learning rate, or an LSTM/GRU.")
        return (Severity.PASS, f"No temporal gradient decay: {base}, within [{fmt(low)}, "
                f"{fmt(high)}].", "")
