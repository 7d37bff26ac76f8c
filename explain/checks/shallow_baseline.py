"""``shallow-baseline``: is the deep model better than a shallow one on this task?
Graded from a measured :class:`~explain.auditing.sections.ShallowBaselineSection`
(``context.baseline``). WARN when the lower end of the paired bootstrap 95% interval of
(deep - best baseline) accuracy is at or below ``baseline_margin``: the data cannot tell the deep
model from the shallow one, which costs a fraction of its parameters and time."""

from __future__ import annotations

from typing import Any

from explain.checks.base import Check, CheckContext, MissingInput, fmt, register_check
from explain.findings import Severity

__all__ = ["ShallowBaseline"]


def _ratio(deep: float, shallow: float) -> str:
    return f"{deep / shallow:.3g}x" if shallow > 0 else "n/a"


@register_check("shallow-baseline")
class ShallowBaseline(Check):
    """Deep accuracy minus the best scikit-learn baseline's, with a paired bootstrap interval."""

    title = "Shallow baseline"
    thresholds = ("baseline_margin",)

    def compute(self, context: CheckContext) -> dict[str, Any]:
        sec = context.baseline
        if sec is None or not getattr(sec, "available", False) or sec.deep is None:
            raise MissingInput(
                "The shallow-baseline check needs the training data; none was given.",
                "Pass train_data=(inputs, labels) to explain.audit (zoo runs pass their "
                "training split).")
        best = sec.best_score
        return {"deep": sec.deep.to_dict(), "baselines": [b.to_dict() for b in sec.baselines],
                "best": sec.best, "best_accuracy": best.accuracy, "margin": sec.margin,
                "margin_low": sec.margin_low, "margin_high": sec.margin_high,
                "parameter_ratio": sec.deep.parameters / max(1, best.parameters),
                "latency_ratio": sec.deep.latency_ms / best.latency_ms
                if best.latency_ms > 0 else None, "n_train": sec.n_train, "n_test": sec.n_test}

    def grade(self, evidence: dict[str, Any], context: CheckContext) -> tuple[Severity, str, str]:
        e, t = evidence, context.threshold("baseline_margin")
        deep, best = e["deep"], next(b for b in e["baselines"] if b["name"] == e["best"])
        scores = (f"{e['best']} scores {fmt(best['accuracy'])} against the deep model's "
                  f"{fmt(deep['accuracy'])} on {e['n_test']} test samples (margin "
                  f"{e['margin']:+.3f}, 95% interval {e['margin_low']:+.3f} to "
                  f"{e['margin_high']:+.3f})")
        cost = (f"the deep model has {_ratio(deep['parameters'], best['parameters'])} the "
                f"parameters and {_ratio(deep['latency_ms'], best['latency_ms'])} the "
                f"latency per sample")
        if e["margin_low"] > t:
            return (Severity.PASS, f"The deep model beats the best shallow baseline: {scores}; "
                    f"{cost}.", "")
        lead = ("A shallow baseline is as good or better" if e["margin"] <= t else
                "The deep model is not clearly better than a shallow baseline")
        return (Severity.WARN, f"{lead}: {scores}; {cost}.",
                f"Prefer {e['best']} unless the deep model earns its cost, or improve the deep "
                "model (more data, pre-training, tuning) until it beats it.")
