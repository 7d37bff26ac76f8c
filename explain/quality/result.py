"""The typed result of :func:`explain.evaluate`: :class:`Verdict` and the frozen :class:`Quality`."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

from explain.findings import Severity

__all__ = ["Verdict", "Quality", "DEFAULT_THRESHOLDS"]

#: Thresholds of the verdict (see the :mod:`explain.quality` docstring for their rationale).
DEFAULT_THRESHOLDS: dict[str, float] = {
    "max_completeness_error": 0.05,
    "max_sanity_correlation": 0.5,
    "max_sensitivity": 1.0,
    "min_faithfulness_margin": 0.0,
}


class Verdict(str, enum.Enum):
    """One-word verdict on an explanation; :attr:`severity` is its grade on the common scale.

    Examples
    --------
    >>> Verdict.DOUBTFUL.severity.value, Verdict.FAILS_SANITY.label
    ('warn', 'fails sanity')
    """

    TRUSTWORTHY = "trustworthy"
    DOUBTFUL = "doubtful"
    FAILS_SANITY = "fails-sanity"

    @property
    def label(self) -> str:
        """Human form: ``"trustworthy"``, ``"doubtful"``, ``"fails sanity"``."""
        return self.value.replace("-", " ")

    @property
    def severity(self) -> Severity:
        """The :class:`explain.Severity` of this verdict (the one mapping; renderers use it)."""
        return _VERDICT_SEVERITY[self]


_VERDICT_SEVERITY = {Verdict.TRUSTWORTHY: Severity.PASS, Verdict.DOUBTFUL: Severity.WARN,
                     Verdict.FAILS_SANITY: Severity.FAIL}


def _clean(value: Any) -> Any:
    """JSON values only: NaN/inf -> None, tuples -> lists, numpy scalars -> Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class Quality:
    """How far an explanation can be trusted, with the numbers behind the verdict.

    Attributes
    ----------
    method : the attribution method evaluated.
    verdict : a :class:`Verdict`.
    summary : one sentence: the verdict and its numbers.
    n_samples : samples evaluated (the first ``n_samples`` of the attribution).
    metrics : the metrics computed (others were not requested, not applicable or failed; see
        ``notes``).
    per_sample : metric -> one value per sample (``None`` where undefined). Keys among
        ``"completeness"`` (relative error), ``"infidelity"``, ``"sensitivity"``,
        ``"deletion_auc"``, ``"insertion_auc"``, ``"random_deletion_auc"``,
        ``"random_insertion_auc"``, ``"sanity"`` (rank correlation after randomizing all layers).
    medians : metric -> median over samples (``None`` when no sample had a value).
    passed : graded criterion -> whether it passed (``"completeness"``, ``"deletion"``,
        ``"insertion"``, ``"sanity"``, ``"sensitivity"``).
    curves : mean faithfulness curves: ``"fraction"``, ``"deletion"``, ``"insertion"``,
        ``"random_deletion"``, ``"random_insertion"`` (class probability per point).
    sanity_curve : ``{"layer": [...], "correlation": [...]}``: median correlation after the
        cascade reached each layer (output first); ``"layers"`` lists every layer randomized.
    reasons : why the verdict is not "trustworthy" (empty when it is).
    notes : metrics skipped or failed, with why.
    thresholds : the thresholds used.
    timings : seconds per metric.
    """

    method: str
    verdict: Verdict
    summary: str
    n_samples: int
    metrics: tuple[str, ...] = ()
    per_sample: dict[str, list[float | None]] = field(default_factory=dict)
    medians: dict[str, float | None] = field(default_factory=dict)
    passed: dict[str, bool] = field(default_factory=dict)
    curves: dict[str, list[float | None]] = field(default_factory=dict)
    sanity_curve: dict[str, list[Any]] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    thresholds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "verdict", Verdict(getattr(self.verdict, "value", self.verdict)))
        object.__setattr__(self, "metrics", tuple(self.metrics))
        object.__setattr__(self, "reasons", tuple(self.reasons))
        object.__setattr__(self, "notes", tuple(self.notes))

    def median(self, metric: str) -> float | None:
        """The median of ``metric`` (``None`` when it was not computed)."""
        return self.medians.get(metric)

    def to_dict(self) -> dict[str, Any]:
        """Strict-JSON form (NaN and infinities become ``None``)."""
        return _clean({
            "method": self.method, "verdict": self.verdict, "summary": self.summary,
            "n_samples": self.n_samples, "metrics": self.metrics,
            "per_sample": self.per_sample, "medians": self.medians, "passed": self.passed,
            "curves": self.curves, "sanity_curve": self.sanity_curve, "reasons": self.reasons,
            "notes": self.notes, "thresholds": self.thresholds, "timings": self.timings,
        })

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Quality:
        """Rebuild a :class:`Quality` from :meth:`to_dict` output."""
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)
