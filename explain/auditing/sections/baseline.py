"""The shallow-baseline section: is the deep model better than a shallow one here?"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from explain.auditing.sections._base import Section, opt_float

__all__ = ["ShallowBaselineSection", "BaselineScore"]


@dataclass(frozen=True)
class BaselineScore:
    """One model on the test split: accuracy, parameter count, prediction time per sample
    (milliseconds) and fit time (seconds; ``None`` for the deep model, trained elsewhere)."""

    name: str
    accuracy: float
    parameters: int
    latency_ms: float
    fit_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "accuracy": self.accuracy, "parameters": self.parameters,
                "latency_ms": self.latency_ms, "fit_seconds": self.fit_seconds}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BaselineScore:
        return cls(str(d["name"]), float(d["accuracy"]), int(d["parameters"]),
                   float(d["latency_ms"]), opt_float(d.get("fit_seconds")))


@dataclass(frozen=True, eq=False, kw_only=True)
class ShallowBaselineSection(Section):
    """Shallow scikit-learn baselines fitted on the training split, scored on the test split.

    Attributes
    ----------
    deep : the deep model's :class:`BaselineScore`.  baselines : each shallow model's.
    best : the name of the best baseline.
    margin, margin_low, margin_high : deep minus best-baseline accuracy and its paired
        bootstrap 95% interval (the same test samples resampled for both).
    n_train, n_test : samples fitted on and scored on.
    """

    name = "shallow_baseline"
    title = "Shallow baseline"
    deep: BaselineScore | None = None
    baselines: tuple[BaselineScore, ...] = ()
    best: str = ""
    margin: float | None = None
    margin_low: float | None = None
    margin_high: float | None = None
    n_train: int = 0
    n_test: int = 0

    @property
    def best_score(self) -> BaselineScore | None:
        return next((b for b in self.baselines if b.name == self.best), None)

    @classmethod
    def _read(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(super()._read(d))
        out["deep"] = None if not d.get("deep") else BaselineScore.from_dict(d["deep"])
        out["baselines"] = tuple(BaselineScore.from_dict(b) for b in d.get("baselines") or ())
        for key in ("margin", "margin_low", "margin_high"):
            out[key] = opt_float(d.get(key))
        return out
