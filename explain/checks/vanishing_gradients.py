"""``vanishing-gradients``: the first weight layer gets a vanishing share of the gradient.

AUTOTRAINER's rule, made robust: the median over sampled steps of ``|g_first| / |g_last|`` below
1e-3 *and* a first-layer norm below 1e-4; graded against loss progress, so a tiny ratio with a
healthy, decreasing loss is at most a WARN, and a tiny ratio with a loss that does not move is a
FAIL. Normalization and embedding layers are left out of the first/last pair: their gradient norms
measure few (or sparsely used) parameters and are not comparable with weight layers.
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
    layer_series,
    loss_change,
    loss_progress,
    median,
    pct,
    register_check,
)
from explain.findings import Severity

__all__ = ["VanishingGradients", "weight_layer_grads", "first_last_ratio"]


def _skip(name: str, info: dict[str, Any]) -> bool:
    kind = str(info.get("type", ""))
    return "Norm" in kind or "Embedding" in kind


def weight_layer_grads(history: Any) -> dict[str, list]:
    """``{layer: grad_norm series}`` of the weight layers, input -> output (no norm/embedding)."""
    return layer_series(history, "grad_norm", skip=_skip)


def first_last_ratio(grads: dict[str, list]) -> dict[str, Any] | None:
    """Per-step and median ``|g_first| / |g_last|`` with the two layers' median norms."""
    if len(grads) < 2:
        return None
    names = list(grads)
    first, last = grads[names[0]], grads[names[-1]]
    per_step = []
    for a, b in zip(first, last):
        a, b = finite([a]), finite([b])
        per_step.append(a[0] / b[0] if a and b and b[0] > 0 else None)
    return {"first_layer": names[0], "last_layer": names[-1], "ratio_per_step": per_step,
            "ratio": median(per_step), "g_first": median(first), "g_last": median(last)}


@register_check("vanishing-gradients")
class VanishingGradients(Check):
    """Compare the first weight layer's gradient norm with the last one's, per sampled step."""

    title = "Vanishing gradients"
    thresholds = ("vanishing_ratio", "vanishing_abs", "min_loss_progress")

    def compute(self, context: CheckContext) -> dict[str, Any]:
        grads = weight_layer_grads(context.history)
        pair = first_last_ratio(grads)
        if pair is None or pair["ratio"] is None:
            raise MissingInput(
                "The vanishing-gradients check needs per-layer gradient norms for at least 2 "
                f"weight layers; the history has {len(grads)}.",
                "Train under explain.TrainingMonitor(model), which records each layer's "
                "grad_norm at sampled steps (call mon.step() after loss.backward()).")
        return {"layers": list(grads), "median_grad_norm": [median(s) for s in grads.values()],
                "grad_norm": grads, "steps": list(getattr(context.history, "steps", []) or []),
                **pair, "loss": loss_progress(context.history)}

    def onset(self, evidence: dict[str, Any], context: CheckContext) -> Onset:
        t = context.threshold("vanishing_ratio")
        return Onset(first_step_where(evidence["steps"], [r is not None and r < t
                                                          for r in evidence["ratio_per_step"]]))

    def grade(self, evidence: dict[str, Any], context: CheckContext) -> tuple[Severity, str, str]:
        ratio_t, abs_t = context.threshold("vanishing_ratio"), context.threshold("vanishing_abs")
        ratio, g_first = evidence["ratio"], evidence["g_first"]
        loss = evidence["loss"]
        stalled = loss is not None and loss["progress"] < context.threshold("min_loss_progress")
        base = (f"the first layer's gradient norm ({evidence['first_layer']}, median "
                f"{fmt(g_first)}) is {fmt(ratio)} times the last layer's "
                f"({evidence['last_layer']}, {fmt(evidence['g_last'])})")
        if g_first == 0:
            base += (" (exactly zero: no gradient reaches it, e.g. dead ReLUs or a frozen layer; "
                     "see dead-units)")
        loss_text = ("the loss progress is unknown" if loss is None else
                     loss_change(loss["progress"]))
        remedy = ("Use ReLU instead of sigmoid/tanh with Xavier/He init, add batch norm or "
                  "residual connections, and train with Adam/RMSProp.")
        if ratio < ratio_t and g_first < abs_t:
            if stalled:
                return (Severity.FAIL, f"Gradients vanish: {base}, below {fmt(ratio_t)}, and "
                        f"{loss_text} (< {pct(context.threshold('min_loss_progress'))}).",
                        remedy)
            return (Severity.WARN, f"Gradients vanish: {base}, below {fmt(ratio_t)}, while "
                    f"{loss_text}.", remedy)
        if ratio < ratio_t:
            return (Severity.INFO, f"Early layers learn slowly: {base}, below {fmt(ratio_t)}, "
                    f"but the first-layer norm is not tiny (>= {fmt(abs_t)}).",
                    "Watch it; if the loss stalls, see the vanishing-gradient remedies (ReLU, "
                    "Xavier/He init, batch norm, residual connections).")
        return Severity.PASS, f"No vanishing gradients: {base} (>= {fmt(ratio_t)}).", ""
