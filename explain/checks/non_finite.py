"""``non-finite``: any NaN or infinity in the loss, gradients, weights or activations is a FAIL."""

from __future__ import annotations

import math
from typing import Any

from explain.checks.base import Check, CheckContext, MissingInput, Onset, register_check
from explain.findings import Severity

__all__ = ["NonFinite"]

_KINDS = {"loss": "the loss", "grad": "gradients", "weight": "weights",
          "activation": "activations"}


@register_check("non-finite")
class NonFinite(Check):
    """Count NaN/inf values recorded by the monitor (``history.nonfinite``)."""

    title = "Non-finite values"

    def compute(self, context: CheckContext) -> dict[str, Any]:
        counts = getattr(context.history, "nonfinite", None)
        if not isinstance(counts, dict) or not counts:
            raise MissingInput(
                "The non-finite check has no counts of NaN/inf values (history.nonfinite is "
                "empty).",
                "Train under explain.TrainingMonitor, which counts non-finite losses, "
                "gradients, weights and activations.")
        per_kind = {k: int(v or 0) for k, v in counts.items()}
        return {"counts": per_kind, "total": sum(per_kind.values()),
                "first_nonfinite_step": _first_nonfinite_step(context.history)}

    def onset(self, evidence: dict[str, Any], context: CheckContext) -> Onset:
        return Onset(evidence.get("first_nonfinite_step"))

    def grade(self, evidence: dict[str, Any], context: CheckContext) -> tuple[Severity, str, str]:
        total = evidence["total"]
        if total == 0:
            return Severity.PASS, "No non-finite values were recorded.", ""
        parts = [f"{n} in {_KINDS.get(k, k)}" for k, n in evidence["counts"].items() if n]
        noun = "value was" if total == 1 else "values were"
        return (Severity.FAIL, f"{total} non-finite {noun} recorded: {', '.join(parts)}.",
                "Use a lower learning rate and gradient clipping; check the inputs for NaN/inf; "
                "Xavier/He init and batch norm keep activations in range.")


def _is_bad(v: Any) -> bool:
    return isinstance(v, float) and not math.isfinite(v)


def _first_nonfinite_step(history: Any) -> int | None:
    """The first sampled step whose loss or a layer statistic is NaN/inf (None if none is)."""
    steps = list(getattr(history, "steps", None) or [])
    series = [list(getattr(history, "step_loss", None) or [])]
    for metrics in (getattr(history, "layers", None) or {}).values():
        series += [list(v) for v in metrics.values()]
    for i, step in enumerate(steps):
        if any(i < len(s) and _is_bad(s[i]) for s in series):
            return int(step)
    return None
