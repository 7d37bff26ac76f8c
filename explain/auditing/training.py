"""The checks stage of an audit: the training and data-sufficiency sections from the history
and the findings of :func:`explain.diagnose`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from explain._core.jsoncodec import to_json_value
from explain.auditing.sections import DataSufficiencySection, TrainingSection
from explain.findings import Finding, Severity
from explain.monitor.history import History

__all__ = ["training_section", "data_sufficiency_section", "spectral_alphas", "as_history"]

NO_HISTORY = ("No training history was given, so training health (curves, gradient flow, "
              "activation health, gradient through time) could not be checked. Record one with "
              "`with explain.TrainingMonitor(model) as mon:` around the training loop (call "
              "mon.step() after each optimizer step and mon.log_epoch(...) per epoch) and pass "
              "history=mon.history to explain.audit.")
NO_CURVE = ("No learning curve was computed. Compute one with explain.checks.learning_curve("
            "fit_and_score, fractions=(0.25, 0.5, 1.0), n_total=...) and pass "
            "learning_curve=... to explain.audit.")
_LISTS = ("steps", "step_loss", "temporal")


def _finding(findings: Sequence[Finding], check: str) -> Finding | None:
    return next((f for f in findings if f.check == check), None)


def as_history(history: Any) -> History:
    """A copy of the contract's fields as a :class:`History` (from a History, its dict, or any
    object with its attributes); the user's object is never shared with the report."""
    get = history.get if isinstance(history, Mapping) else lambda k: getattr(history, k, None)
    data: dict[str, Any] = {}
    for f in fields(History):
        value = get(f.name)
        data[f.name] = to_json_value(value) if value is not None else (
            [] if f.name in _LISTS else {})
    return History(**data)


def spectral_alphas(finding: Finding | None) -> dict[str, float | None]:
    """Layer -> heavy-tail exponent alpha, read from the spectral finding's evidence."""
    if finding is None:
        return {}
    ev = finding.evidence
    layers, alpha = ev.get("layers"), ev.get("alpha")
    if isinstance(layers, list) and isinstance(alpha, list) and len(layers) == len(alpha):
        return {str(k): v for k, v in zip(layers, alpha)}
    for key in ("alphas", "alpha", "layers", "per_layer"):
        table = ev.get(key)
        if isinstance(table, Mapping):
            return {str(k): (v.get("alpha") if isinstance(v, Mapping) else v)
                    for k, v in table.items()
                    if not isinstance(v, Mapping) or "alpha" in v}
        if isinstance(table, list) and table and isinstance(table[0], Mapping):
            return {str(r.get("layer", r.get("name", i))): r.get("alpha")
                    for i, r in enumerate(table)}
    return {}


def training_section(history: Any, findings: Sequence[Finding],
                     missing: str = "") -> TrainingSection:
    """Curves, per-layer series and the BPTT curve, plus where overfitting starts.

    ``missing`` says why the checks could not run (the section is then unavailable).
    """
    spectral = _finding(findings, "spectral")
    alphas = spectral_alphas(spectral)
    summary = spectral.summary if spectral else "not run"
    if history is None or missing:
        return TrainingSection(available=False, reason=missing or NO_HISTORY,
                               spectral_alphas=alphas, spectral_summary=summary)
    over = _finding(findings, "overfitting")
    overfit_epoch = None
    if over is not None and over.severity >= Severity.WARN:
        overfit_epoch = over.evidence.get("best_epoch")
    return TrainingSection(history=as_history(history), overfit_epoch=overfit_epoch,
                           spectral_alphas=alphas, spectral_summary=summary)


def data_sufficiency_section(findings: Sequence[Finding],
                             learning_curve: Any) -> DataSufficiencySection:
    """The learning curve (n_train, val score) where it was computed."""
    finding = _finding(findings, "data-sufficiency")
    curve = learning_curve
    if curve is None and finding is not None:
        ev = finding.evidence
        if isinstance(ev.get("n_train"), list) and isinstance(ev.get("score"), list):
            curve = list(zip(ev["n_train"], ev["score"]))
    if not curve:
        return DataSufficiencySection.unavailable(NO_CURVE)
    pts = [tuple(p)[:2] for p in (curve.items() if isinstance(curve, Mapping) else curve)]
    return DataSufficiencySection(curve=tuple((float(a), float(b)) for a, b in pts),
                                  summary=finding.summary if finding is not None else "",
                                  **_fit(curve))


def _fit(curve: Any) -> dict[str, Any]:
    """The section's fit fields from a :class:`LearningCurve` with a fit (else none)."""
    try:
        from explain.checks.data_sufficiency import LearningCurve
    except ImportError:  # the checks are optional; without them there is no fitted curve type
        return {}
    fit: dict[str, Any] = {}
    if isinstance(curve, LearningCurve) and curve.params is not None:
        fit = {"params": curve.params, "predicted_gain": curve.predicted_gain,
               "gain_low": curve.gain_low, "gain_high": curve.gain_high,
               "prediction": curve.summary}
    return fit
