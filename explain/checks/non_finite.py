"""``non-finite``: any NaN or infinity in the loss, gradients, weights or activations is a FAIL."""

from __future__ import annotations

from typing import Any

from explain.checks.base import Check, CheckContext, MissingInput, register_check
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
        evidence = {"counts": {k: int(v or 0) for k, v in counts.items()}}
        evidence["total"] = sum(evidence["counts"].values())
        return evidence

    def grade(self, evidence: dict[str, Any], context: CheckContext) -> tuple[Severity, str, str]:
        total = evidence["total"]
        if total == 0:
            return Severity.PASS, "No non-finite values were recorded.", ""
        parts = [f"{n} in {_KINDS.get(k, k)}" for k, n in evidence["counts"].items() if n]
        noun = "value was" if total == 1 else "values were"
        return (Severity.FAIL, f"{total} non-finite {noun} recorded: {', '.join(parts)}.",
                "Use a lower learning rate and gradient clipping; check the inputs for NaN/inf; "
                "Xavier/He init and batch norm keep activations in range.")
