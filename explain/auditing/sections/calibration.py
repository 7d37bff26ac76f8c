"""The calibration section: are the predicted probabilities honest, and what temperature
scaling does about it (Guo et al. 2017)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from explain.auditing.sections._base import Section, opt_float
from explain.auditing.sections.performance import CalibrationBin

__all__ = ["CalibrationSection"]


@dataclass(frozen=True, eq=False, kw_only=True)
class CalibrationSection(Section):
    """Expected and maximum calibration error, NLL, and the same after temperature scaling.

    Attributes
    ----------
    n, n_bins : samples and equal-width confidence bins.
    accuracy, confidence : accuracy and mean top-class confidence.
    ece, ece_low, ece_high : expected calibration error and its 95% bootstrap interval.
    mce : maximum calibration error (worst non-empty bin).  nll : mean negative log-likelihood.
    bins : the reliability bins (:class:`CalibrationBin`).
    temperature : the fitted temperature ``T`` (logits / T); ``None`` when not fitted.
    fit_on : what ``T`` was fitted on (validation data, or a 2-fold cross-fit of the
        evaluation data).
    ece_after, mce_after, nll_after, accuracy_after, bins_after : after temperature scaling.
    """

    name = "calibration"
    title = "Calibration"
    n: int = 0
    n_bins: int = 15
    accuracy: float | None = None
    confidence: float | None = None
    ece: float | None = None
    ece_low: float | None = None
    ece_high: float | None = None
    mce: float | None = None
    nll: float | None = None
    bins: tuple[CalibrationBin, ...] = ()
    temperature: float | None = None
    fit_on: str = ""
    ece_after: float | None = None
    mce_after: float | None = None
    nll_after: float | None = None
    accuracy_after: float | None = None
    bins_after: tuple[CalibrationBin, ...] = ()

    @property
    def over_confident(self) -> bool:
        """Whether the mean confidence exceeds the accuracy."""
        return (self.confidence or 0.0) > (self.accuracy or 0.0)

    @classmethod
    def _read(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(super()._read(d))
        for key in ("bins", "bins_after"):
            out[key] = tuple(CalibrationBin.from_dict(b) for b in d.get(key) or ())
        for key in ("accuracy", "confidence", "ece", "ece_low", "ece_high", "mce", "nll",
                    "temperature", "ece_after", "mce_after", "nll_after", "accuracy_after"):
            out[key] = opt_float(d.get(key))
        out["n"], out["n_bins"] = int(d.get("n", 0)), int(d.get("n_bins", 15))
        out["fit_on"] = str(d.get("fit_on") or "")
        return out
