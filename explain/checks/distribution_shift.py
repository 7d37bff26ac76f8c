"""``distribution-shift``: does the model see the current data like the reference data?
Graded from a measured :class:`~explain.auditing.sections.DistributionShiftSection`
(``context.shift``; see :func:`explain.drift`). WARN when any of the three Holm-adjusted
p-values (confidence, class mix, representation) is at or below ``shift_alpha``."""

from __future__ import annotations

from typing import Any

from explain.checks.base import Check, CheckContext, MissingInput, fmt, pct, register_check
from explain.findings import Severity

__all__ = ["DistributionShift"]


@register_check("distribution-shift")
class DistributionShift(Check):
    """KS on confidence, chi-square on the predicted-class mix, MMD on representations."""

    title = "Distribution shift"
    thresholds = ("shift_alpha",)

    def compute(self, context: CheckContext) -> dict[str, Any]:
        sec = context.shift
        if sec is None or not getattr(sec, "available", False):
            raise MissingInput(
                "The distribution-shift check needs reference and current data; none was given.",
                "Call explain.drift(model, reference, current), or pass val_data=... (the "
                "reference) to explain.audit; zoo runs use their validation split.")
        return {"reference": sec.reference, "current": sec.current,
                "n_reference": sec.n_reference, "n_current": sec.n_current,
                "p_values": {t.name: t.p_value for t in sec.tests},
                "p_adjusted": {t.name: t.p_adjusted for t in sec.tests},
                "statistics": {t.name: t.statistic for t in sec.tests},
                "most_shifted_classes": [c.to_dict() for c in sec.classes[:3]],
                "mean_confidence": [sec.mean_confidence_reference, sec.mean_confidence_current]}

    def grade(self, evidence: dict[str, Any], context: CheckContext) -> tuple[Severity, str, str]:
        alpha, adj = context.threshold("shift_alpha"), evidence["p_adjusted"]
        sizes = f"{evidence['n_reference']} {evidence['reference']} vs {evidence['n_current']} " \
                f"{evidence['current']} samples"
        listed = ", ".join(f"{k} p={fmt(v)}" for k, v in adj.items())
        shifted = [k for k, v in adj.items() if v <= alpha]
        if shifted:
            top = evidence["most_shifted_classes"][0]
            conf = evidence["mean_confidence"]
            return (Severity.WARN, f"The data shifted ({sizes}): {', '.join(shifted)} differ at "
                    f"alpha {fmt(alpha)} after Holm correction ({listed}). Mean confidence "
                    f"{fmt(conf[0])} -> {fmt(conf[1])}; most shifted predicted class "
                    f"{top['name']!r} ({pct(top['reference'])} -> {pct(top['current'])}).",
                    "Check where the current data come from; re-validate the model on labelled "
                    "current data, and retrain or fine-tune on it if accuracy dropped.")
        return (Severity.PASS, f"No shift detected ({sizes}): every Holm-adjusted p-value is "
                f"above alpha {fmt(alpha)} ({listed}).", "")
