"""The training-health and data-sufficiency sections."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from explain._core.jsoncodec import to_json_value
from explain.auditing.sections._base import Section, opt_int
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
    """The learning curve: validation score per number of training samples.

    Attributes
    ----------
    curve : ``(n_train, score)`` points.
    summary : the data-sufficiency check's sentence ("" when it did not run).
    """

    name = "data_sufficiency"
    title = "Data sufficiency"
    curve: tuple[tuple[float, float], ...] = ()
    summary: str = ""

    @classmethod
    def _read(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        return {"curve": tuple((p[0], p[1]) for p in d.get("curve") or []),
                "summary": str(d.get("summary") or "")}
