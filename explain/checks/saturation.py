"""``saturation``: sigmoid/tanh units stuck in the flat ends of their non-linearity.

Per sigmoid/tanh layer, the median over the last sampled steps of the fraction of saturated units
(as recorded by the monitor); the worst layer grades the finding (WARN > 30%, FAIL > 60%).
"""

from __future__ import annotations

from typing import Any

from explain.checks.base import Check, CheckContext, MissingInput, Onset, pct, register_check
from explain.checks.dead_units import unit_fractions, unit_onset
from explain.findings import Severity

__all__ = ["Saturation"]

SATURATING = {"sigmoid", "tanh", "hardtanh", "hardsigmoid", "softsign", "logsigmoid"}


@register_check("saturation")
class Saturation(Check):
    """Fraction of saturated units per sigmoid/tanh layer over the last sampled steps."""

    title = "Saturation"
    thresholds = ("saturation_warn", "saturation_fail", "tail_fraction")

    def compute(self, context: CheckContext) -> dict[str, Any]:
        matching, series, medians = unit_fractions(
            context.history, "frac_saturated", SATURATING, context.threshold("tail_fraction"))
        if not matching:
            raise MissingInput(
                "No layer with a sigmoid or tanh activation was recorded, so the saturation "
                "check does not apply.",
                "Nothing to do for models without sigmoid/tanh; otherwise make sure "
                "history.layer_info[layer]['activation'] is recorded (explain.TrainingMonitor "
                "does).")
        if not medians:
            raise MissingInput(
                f"The saturation check found {len(matching)} sigmoid/tanh layers but no "
                "'frac_saturated' values for them.",
                "Train under explain.TrainingMonitor(model), which records frac_saturated per "
                "layer.")
        return {"layers": list(medians), "frac_saturated": list(medians.values()),
                "series": series, "steps": list(getattr(context.history, "steps", []) or [])}

    def onset(self, evidence: dict[str, Any], context: CheckContext) -> Onset:
        return unit_onset(evidence, "frac_saturated", context.threshold("saturation_warn"))

    def grade(self, evidence: dict[str, Any], context: CheckContext) -> tuple[Severity, str, str]:
        warn, fail = context.threshold("saturation_warn"), context.threshold("saturation_fail")
        fracs = dict(zip(evidence["layers"], evidence["frac_saturated"]))
        worst = max(fracs, key=lambda n: fracs[n])
        n_warn = sum(f > warn for f in fracs.values())
        if fracs[worst] > warn:
            severity = Severity.FAIL if fracs[worst] > fail else Severity.WARN
            limit = fail if severity is Severity.FAIL else warn
            return (severity, f"Saturated units: {pct(fracs[worst])} of the units of {worst} are "
                    f"saturated (> {pct(limit)}); {n_warn} of {len(fracs)} sigmoid/tanh layers "
                    f"are above {pct(warn)}.",
                    "Use ReLU, or keep sigmoid/tanh with Xavier init, batch norm and a lower "
                    "learning rate.")
        return (Severity.PASS, f"No saturation: at most {pct(fracs[worst])} of a layer's units "
                f"are saturated ({worst}), at or below {pct(warn)}.", "")
