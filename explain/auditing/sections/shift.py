"""The distribution-shift section: does the model see the current data like the reference?"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from explain.auditing.sections._base import Section, opt_float

__all__ = ["DistributionShiftSection", "ShiftTest", "ClassShift"]


@dataclass(frozen=True)
class ShiftTest:
    """One two-sample test: its statistic, raw p-value and Holm-adjusted p-value."""

    name: str
    statistic: float
    p_value: float
    p_adjusted: float
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "statistic": self.statistic, "p_value": self.p_value,
                "p_adjusted": self.p_adjusted, "detail": self.detail}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ShiftTest:
        return cls(str(d["name"]), float(d["statistic"]), float(d["p_value"]),
                   float(d["p_adjusted"]), str(d.get("detail") or ""))


@dataclass(frozen=True)
class ClassShift:
    """A predicted class's share of the reference and current data and its adjusted
    standardised residual (how far the current count is from no shift, in standard errors)."""

    name: str
    reference: float
    current: float
    residual: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "reference": self.reference, "current": self.current,
                "residual": self.residual}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ClassShift:
        return cls(str(d["name"]), float(d["reference"]), float(d["current"]),
                   float(d["residual"]))


@dataclass(frozen=True, eq=False, kw_only=True)
class DistributionShiftSection(Section):
    """Confidence (KS), predicted-class mix (chi-square) and penultimate-layer representations
    (MMD, RBF kernel, permutation p-value) of a reference and a current data set.

    Attributes
    ----------
    reference, current : what the two data sets are.  n_reference, n_current : their sizes.
    tests : the three :class:`ShiftTest` results (Holm-adjusted over the three).
    classes : a :class:`ClassShift` per class, most shifted first.
    confidence_edges, confidence_reference, confidence_current : a 20-bin histogram of the
        top-class confidence (fractions) of each data set.
    """

    name = "distribution_shift"
    title = "Distribution shift"
    reference: str = ""
    current: str = ""
    n_reference: int = 0
    n_current: int = 0
    tests: tuple[ShiftTest, ...] = ()
    classes: tuple[ClassShift, ...] = ()
    confidence_edges: tuple[float, ...] = ()
    confidence_reference: tuple[float, ...] = ()
    confidence_current: tuple[float, ...] = ()
    mean_confidence_reference: float | None = None
    mean_confidence_current: float | None = None

    def test(self, name: str) -> ShiftTest | None:
        """The test called ``name`` (``"confidence"``, ``"class mix"``, ``"representation"``)."""
        return next((t for t in self.tests if t.name == name), None)

    @classmethod
    def _read(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(super()._read(d))
        out["tests"] = tuple(ShiftTest.from_dict(t) for t in d.get("tests") or ())
        out["classes"] = tuple(ClassShift.from_dict(c) for c in d.get("classes") or ())
        for key in ("confidence_edges", "confidence_reference", "confidence_current"):
            out[key] = tuple(float(v) for v in d.get(key) or ())
        for key in ("mean_confidence_reference", "mean_confidence_current"):
            out[key] = opt_float(d.get(key))
        return out
