"""``robustness``: does accuracy hold under mild corruptions of the input? Graded from a
measured :class:`~explain.auditing.sections.RobustnessSection` (``context.robustness``).

WARN when, at the mildest severity (1 of 5), some corruption costs more than
``robustness_mild_drop`` of the clean accuracy (relative). Severity-1 corruptions are meant to
leave the input plainly recognisable (ImageNet-C's first level), so a large loss there is
brittleness, not an impossible task."""

from __future__ import annotations

from typing import Any

from explain.checks.base import Check, CheckContext, MissingInput, fmt, pct, register_check
from explain.findings import Severity

__all__ = ["Robustness"]


@register_check("robustness")
class Robustness(Check):
    """Relative accuracy under each corruption at severities 1..5."""

    title = "Robustness"
    thresholds = ("robustness_mild_drop",)

    def compute(self, context: CheckContext) -> dict[str, Any]:
        sec = context.robustness
        if sec is None or not getattr(sec, "available", False) or not sec.curves:
            raise MissingInput(
                "The robustness check needs labelled evaluation data; none was given.",
                "Run explain.audit(model, data=(inputs, labels)).")
        mild = {c.name: 1.0 - c.relative[0] for c in sec.curves}
        worst = max(mild, key=lambda k: mild[k])
        return {"modality": sec.modality, "n": sec.n, "clean_accuracy": sec.clean_accuracy,
                "relative": {c.name: list(c.relative) for c in sec.curves},
                "mild_drop": mild, "worst": worst, "worst_mild_drop": mild[worst],
                "worst_severe": min(c.relative[-1] for c in sec.curves)}

    def grade(self, evidence: dict[str, Any], context: CheckContext) -> tuple[Severity, str, str]:
        e, t = evidence, context.threshold("robustness_mild_drop")
        n = len(e["mild_drop"])
        base = (f"clean accuracy {fmt(e['clean_accuracy'])} on {e['n']} samples; at the "
                f"mildest severity {e['worst']} costs {pct(e['worst_mild_drop'])} of it")
        brittle = [k for k, v in e["mild_drop"].items() if v > t]
        if brittle:
            return (Severity.WARN, f"Accuracy breaks under mild corruptions: {base}, more than "
                    f"{pct(t)} ({len(brittle)} of {n} corruptions: {', '.join(brittle)}).",
                    "Train with data augmentation for these corruptions (noise, blur, shifts; "
                    "token dropout for text), or report the accuracy under shift with the model.")
        return (Severity.PASS, f"Accuracy holds under mild corruptions: {base}, at most "
                f"{pct(t)}; at the worst severity the model keeps "
                f"{pct(e['worst_severe'])} of its accuracy.", "")
