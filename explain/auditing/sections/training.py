"""The training-health and data-sufficiency sections."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from explain._core.jsoncodec import to_json_value
from explain.auditing.sections._base import Section, opt_float, opt_int
from explain.monitor.history import History

__all__ = ["TrainingSection", "DataSufficiencySection"]

_HISTORY_FIELDS = tuple(f.name for f in fields(History))


@dataclass(frozen=True, eq=False, kw_only=True)
class TrainingSection(Section):
    """Curves, per-layer series and the BPTT curve of the recorded training, plus where
    overfitting starts and the spectral heavy-tail exponent per layer.

    Attributes
    ----------
    history : the :class:`explain.monitor.History` the checks read (``None`` without one).
    overfit_epoch : the epoch after which validation loss rose (when the check warned).
    spectral_alphas : layer -> heavy-tail exponent alpha (``None`` where not measured).
    spectral_summary : the spectral check's sentence (``"not run"`` when it did not run).
    """

    name = "training"
    title = "Training health"
    history: History | None = None
    overfit_epoch: int | None = None
    spectral_alphas: dict[str, float | None] = field(default_factory=dict)
    spectral_summary: str = "not run"

    def to_dict(self) -> dict[str, Any]:
        h = self.history
        return to_json_value({
            "available": self.available, "reason": self.reason,
            "history": None if h is None else {k: getattr(h, k) for k in _HISTORY_FIELDS},
            "overfit_epoch": self.overfit_epoch,
            "spectral": {"alphas": dict(self.spectral_alphas), "summary": self.spectral_summary}})

    @classmethod
    def _read(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        h = d.get("history")
        spectral = d.get("spectral") or {}
        return {"history": None if not h else History(**{k: h[k] for k in _HISTORY_FIELDS
                                                         if k in h}),
                "overfit_epoch": opt_int(d.get("overfit_epoch")),
                "spectral_alphas": {str(k): v for k, v in (spectral.get("alphas") or {}).items()},
                "spectral_summary": str(spectral.get("summary", "not run"))}


@dataclass(frozen=True, eq=False, kw_only=True)
class DataSufficiencySection(Section):
    """The learning curve: validation score per number of training samples, and, when it came
    from :func:`zoo.learning_curve`, the saturating power law fitted to it.

    Attributes
    ----------
    curve : ``(n_train, score)`` points.
    summary : the data-sufficiency check's sentence ("" when it did not run).
    params : fitted ``(a, b, c)`` of ``score(n) = a - b * n**-c`` (``None``: no fit given).
    predicted_gain, gain_low, gain_high : predicted score gain from doubling the largest
        training set and its 90% interval (``None`` where unknown).
    prediction : the fit's sentence ("Doubling the data would help: ..."; "" without a fit).
    """

    name = "data_sufficiency"
    title = "Data sufficiency"
    curve: tuple[tuple[float, float], ...] = ()
    summary: str = ""
    params: tuple[float, float, float] | None = None
    predicted_gain: float | None = None
    gain_low: float | None = None
    gain_high: float | None = None
    prediction: str = ""

    @property
    def fit_formula(self) -> str:
        """``"score(n) = 0.963 - 2.1 * n^-0.52"`` (``""`` without a fit)."""
        if self.params is None:
            return ""
        a, b, c = self.params
        return f"score(n) = {a:.3f} - {b:.3g} * n^-{c:.2f}"

    @classmethod
    def _read(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        params = d.get("params")
        return {"curve": tuple((p[0], p[1]) for p in d.get("curve") or []),
                "summary": str(d.get("summary") or ""),
                "params": None if not params else (float(params[0]), float(params[1]),
                                                   float(params[2])),
                "predicted_gain": opt_float(d.get("predicted_gain")),
                "gain_low": opt_float(d.get("gain_low")),
                "gain_high": opt_float(d.get("gain_high")),
                "prediction": str(d.get("prediction") or "")}
