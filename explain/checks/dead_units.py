"""``dead-units``: ReLU units that are never active at the end of training ("dying ReLU").

Per ReLU-family layer, the fraction of units never active in the sampled batch, taken as the
minimum over the last sampled steps: a dead unit is silent in every batch, while a live but
selective unit can be silent in one small batch (a 64-unit layer trained with batch 32 showed
50-70% per-batch "dead" units that fired in other batches). The minimum counts only units silent
in all of them. The worst layer grades the finding (WARN > 30%, FAIL > 50%).

Dead units are a pathology of the fit only when the fit suffers: units that died (or were dead
from initialisation) while the training loss still fell by ``dead_fit_progress`` (99%) or more
are spare capacity, not a broken net (Lu et al. 2019, "Dying ReLU and initialization": a net
is harmed when so many units die that it collapses to a constant). Such a finding is an INFO.
For cross-entropy the bound also implies a high training accuracy: a misclassified sample has a
loss of at least ln 2, so a mean loss of 1% of ln K leaves at most 0.01 ln K / ln 2 of the
samples misclassified (3% for K = 10).
"""

from __future__ import annotations

from typing import Any

from explain.checks.base import (
    Check,
    CheckContext,
    MissingInput,
    Onset,
    first_step_where,
    fmt,
    layer_series,
    loss_change,
    loss_progress,
    median,
    pct,
    register_check,
    tail,
)
from explain.findings import Severity

__all__ = ["DeadUnits", "unit_fractions", "activation_of", "unit_onset"]

RELU_FAMILY = {"relu", "relu6"}


def activation_of(info: dict[str, Any]) -> str:
    """The layer's activation name in lower case ('' when unknown); activation modules count."""
    act = info.get("activation") or info.get("type") or ""
    return str(act).lower()


def unit_fractions(history: Any, metric: str, activations: set[str], fraction: float,
                   reduce: Any = median) -> tuple[list[str], dict[str, list], dict[str, float]]:
    """Layers with one of ``activations``; their ``metric`` series and end-of-training values.

    Returns ``(matching_layers, series, tail_values)``; ``series`` only holds the layers that
    recorded ``metric``; ``reduce`` (median by default) summarises the tail of each series.
    """
    infos = getattr(history, "layer_info", None) or {}
    layers = getattr(history, "layers", None) or {}
    matching = [n for n in layers if activation_of(infos.get(n, {})) in activations]
    series = layer_series(history, metric,
                          skip=lambda n, info: activation_of(info) not in activations)
    medians = {n: reduce(tail(s, fraction)) for n, s in series.items()}
    return matching, series, {n: m for n, m in medians.items() if m is not None}


def unit_onset(evidence: dict[str, Any], values_key: str, warn: float) -> Onset:
    """From which sampled step the worst layer stayed above ``warn`` (its ``series``)."""
    fracs = dict(zip(evidence["layers"], evidence[values_key]))
    if not fracs:
        return Onset()
    worst = max(fracs, key=lambda n: fracs[n])
    pairs = [(s, v) for s, v in zip(evidence["steps"], evidence["series"].get(worst, []))
             if v is not None]
    return Onset(first_step_where([s for s, _ in pairs], [v > warn for _, v in pairs],
                                  sustained=True))


def _persistent(values: list) -> float | None:
    """The smallest finite value: units dead in every one of the sampled batches."""
    vals = [v for v in values if v is not None and v == v]
    return min(vals) if vals else None


@register_check("dead-units")
class DeadUnits(Check):
    """Fraction of dead units per ReLU layer over the last sampled steps."""

    title = "Dead units"
    thresholds = ("dead_warn", "dead_fail", "tail_fraction", "dead_fit_progress")

    def compute(self, context: CheckContext) -> dict[str, Any]:
        matching, series, medians = unit_fractions(
            context.history, "frac_dead", RELU_FAMILY, context.threshold("tail_fraction"),
            reduce=_persistent)
        if not matching:
            raise MissingInput(
                "No layer with a ReLU activation was recorded, so the dead-units check does not "
                "apply.",
                "Nothing to do for models without ReLU; otherwise make sure "
                "history.layer_info[layer]['activation'] is recorded (explain.TrainingMonitor "
                "does).")
        if not medians:
            raise MissingInput(
                f"The dead-units check found {len(matching)} ReLU layers but no 'frac_dead' "
                "values for them.",
                "Train under explain.TrainingMonitor(model), which records frac_dead (units "
                "never active in the sampled batch) per layer.")
        return {"layers": list(medians), "frac_dead": list(medians.values()), "series": series,
                "steps": list(getattr(context.history, "steps", []) or []),
                "loss": loss_progress(context.history)}

    def onset(self, evidence: dict[str, Any], context: CheckContext) -> Onset:
        return unit_onset(evidence, "frac_dead", context.threshold("dead_warn"))

    def grade(self, evidence: dict[str, Any], context: CheckContext) -> tuple[Severity, str, str]:
        warn, fail = context.threshold("dead_warn"), context.threshold("dead_fail")
        fracs = dict(zip(evidence["layers"], evidence["frac_dead"]))
        worst = max(fracs, key=lambda n: fracs[n])
        n_warn = sum(f > warn for f in fracs.values())
        remedy = ("Use a lower learning rate, He init and batch norm before the ReLU, or Adam; "
                  "a leaky ReLU variant keeps units alive.")
        if fracs[worst] > warn:
            severity = Severity.FAIL if fracs[worst] > fail else Severity.WARN
            limit = fail if severity is Severity.FAIL else warn
            dead = (f"{pct(fracs[worst])} of the units of {worst} are dead (> {pct(limit)}); "
                    f"{n_warn} of {len(fracs)} ReLU layers are above {pct(warn)}")
            loss, fit = evidence.get("loss"), context.threshold("dead_fit_progress")
            if loss is not None and not loss["diverged"] and loss["progress"] >= fit:
                return (Severity.INFO, f"Spare capacity, not dying ReLU: {dead}, but "
                        f"{loss_change(loss['progress'])} ({fmt(loss['start'])} -> "
                        f"{fmt(loss['end'])}, >= {pct(fit)}): the live units fit the training "
                        "data.", "A smaller layer would fit as well; a leaky ReLU keeps units "
                        "alive if the capacity is needed.")
            return (severity, f"Dying ReLU: {dead}.", remedy)
        return (Severity.PASS, f"No dying ReLU: at most {pct(fracs[worst])} of a layer's units "
                f"are dead ({worst}), at or below {pct(warn)}.", "")
