"""``calibration``: are the predicted probabilities honest? Graded from a measured
:class:`~explain.auditing.sections.CalibrationSection` (``context.calibration``).

The ECE of a finite sample is biased upwards (a perfectly calibrated model scores ~0.02-0.03
on 500 samples in 15 bins), so the grade reads the *lower* end of the ECE's 95% bootstrap
interval: WARN only when even that exceeds ``calibration_ece``. The remedy is measured, not
named: the finding reports the ECE after temperature scaling and that accuracy is unchanged.
"""

from __future__ import annotations

from typing import Any

from explain.checks.base import Check, CheckContext, MissingInput, fmt, register_check
from explain.findings import Severity

__all__ = ["Calibration"]

NEEDS_DATA = ("The calibration check needs labelled evaluation data; none was given.",
              "Run explain.audit(model, data=(inputs, labels)); pass val_data=... to fit the "
              "temperature on validation data.")


@register_check("calibration")
class Calibration(Check):
    """15-bin ECE (bootstrap interval), MCE and NLL, before and after temperature scaling."""

    title = "Calibration"
    thresholds = ("calibration_ece",)

    def compute(self, context: CheckContext) -> dict[str, Any]:
        sec = context.calibration
        if sec is None or not getattr(sec, "available", False):
            raise MissingInput(*NEEDS_DATA)
        return {k: getattr(sec, k) for k in (
            "n", "n_bins", "accuracy", "confidence", "ece", "ece_low", "ece_high", "mce", "nll",
            "temperature", "fit_on", "ece_after", "mce_after", "nll_after", "accuracy_after")}

    def grade(self, evidence: dict[str, Any], context: CheckContext) -> tuple[Severity, str, str]:
        e, t = evidence, context.threshold("calibration_ece")
        measured = (f"expected calibration error {fmt(e['ece'])} (95% interval "
                    f"{fmt(e['ece_low'])}-{fmt(e['ece_high'])}, {e['n_bins']} bins, {e['n']} "
                    f"samples)")
        scaled = (f"Temperature scaling (T={fmt(e['temperature'])}, fit on {e['fit_on']}) "
                  f"gives {fmt(e['ece_after'])} with accuracy "
                  f"{'unchanged' if e['accuracy_after'] == e['accuracy'] else 'changed'} "
                  f"({fmt(e['accuracy'])} -> {fmt(e['accuracy_after'])}).")
        if e["ece_low"] > t:
            side = "over" if e["confidence"] > e["accuracy"] else "under"
            return (Severity.WARN, f"The probabilities are miscalibrated: {measured}, above "
                    f"{fmt(t)}; the model is {side}-confident (mean confidence "
                    f"{fmt(e['confidence'])}, accuracy {fmt(e['accuracy'])}). {scaled}",
                    "Use explain.calibrate(model, val_data) (temperature scaling) before "
                    "reading the probabilities as confidences.")
        return (Severity.PASS, f"The probabilities are calibrated: {measured}; its lower bound "
                f"is not above {fmt(t)}. {scaled}", "")
