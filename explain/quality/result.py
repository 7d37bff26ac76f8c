"""The typed result of :func:`explain.evaluate`: :class:`Verdict` and the frozen :class:`Quality`."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from explain._core.jsoncodec import decode, encode
from explain.errors import CorruptRunError
from explain.findings import Severity
from explain.quality.thresholds import DEFAULT_THRESHOLDS

__all__ = ["Verdict", "Quality"]


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
        """Strict-JSON form (:mod:`explain._core.jsoncodec`): a NaN or infinity is written as
        ``None`` and listed under ``"nonfinite_values"``, so :meth:`from_dict` restores it.

        Examples
        --------
        >>> q = Quality(method="m", verdict="doubtful", summary="s", n_samples=1,
        ...             medians={"sanity": float("nan")})
        >>> d = q.to_dict()
        >>> d["medians"], d["nonfinite_values"]
        ({'sanity': None}, [{'path': '/medians/sanity', 'value': 'nan'}])
        >>> Quality.from_dict(d).medians
        {'sanity': nan}
        """
        return encode({
            "method": self.method, "verdict": self.verdict, "summary": self.summary,
            "n_samples": self.n_samples, "metrics": self.metrics,
            "per_sample": self.per_sample, "medians": self.medians, "passed": self.passed,
            "curves": self.curves, "sanity_curve": self.sanity_curve, "reasons": self.reasons,
            "notes": self.notes, "thresholds": self.thresholds, "timings": self.timings,
        })

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Quality:
        """Rebuild a :class:`Quality` from :meth:`to_dict` output (non-finite values restored).

        Raises
        ------
        CorruptRunError
            ``d`` is not a mapping or lacks ``method``, ``verdict``, ``summary``, ``n_samples``.
        """
        if not isinstance(d, Mapping):
            raise CorruptRunError(f"A Quality must be read from a dict (Quality.to_dict()). Got "
                                  f"{type(d).__name__} instead.")
        data = decode(d, what="Quality")
        missing = [k for k in ("method", "verdict", "summary", "n_samples") if k not in data]
        if missing:
            raise CorruptRunError(f"The Quality dict lacks {missing}. Re-create it with "
                                  "Quality.to_dict().")
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
