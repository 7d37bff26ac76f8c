"""The performance section: accuracy, per-class scores, confusion, calibration, mistakes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from explain.auditing.sections._base import ByValue, Section, compact, opt_float, tensor_of

__all__ = ["PerformanceSection", "ClassMetrics", "CalibrationBin", "Mistake"]


@dataclass(frozen=True)
class ClassMetrics:
    """Precision, recall and F1 of one class (``None`` where undefined: no predictions/samples)."""

    name: str
    precision: float | None
    recall: float | None
    f1: float | None
    support: int

    def to_dict(self) -> dict[str, Any]:
        return {"class": self.name, "precision": self.precision, "recall": self.recall,
                "f1": self.f1, "support": self.support}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ClassMetrics:
        return cls(str(d["class"]), opt_float(d.get("precision")), opt_float(d.get("recall")),
                   opt_float(d.get("f1")), int(d.get("support", 0)))


@dataclass(frozen=True)
class CalibrationBin:
    """One equal-width confidence bin ``[lo, hi)``: its count, accuracy and mean confidence."""

    lo: float
    hi: float
    count: int
    accuracy: float | None
    confidence: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"lo": self.lo, "hi": self.hi, "count": self.count, "accuracy": self.accuracy,
                "confidence": self.confidence}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CalibrationBin:
        return cls(float(d["lo"]), float(d["hi"]), int(d["count"]), opt_float(d.get("accuracy")),
                   opt_float(d.get("confidence")))


@dataclass(frozen=True, eq=False)
class Mistake(ByValue):
    """A wrong prediction: sample index, true and predicted class, confidence, and its input
    (an image ``[C, H, W]``) or its text (decoded tokens) when they are small enough to keep."""

    index: int
    true: int
    pred: int
    confidence: float
    input: torch.Tensor | None = None
    text: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"index": self.index, "true": self.true, "pred": self.pred,
                             "confidence": self.confidence}
        if self.input is not None:
            d["input"] = compact(self.input)
        if self.text is not None:
            d["text"] = self.text
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Mistake:
        return cls(int(d["index"]), int(d["true"]), int(d["pred"]), float(d["confidence"]),
                   tensor_of(d.get("input")), d.get("text"))


@dataclass(frozen=True, eq=False, kw_only=True)
class PerformanceSection(Section):
    """A classifier's numbers on the labelled evaluation data.

    Attributes
    ----------
    n : samples evaluated.  accuracy, loss : accuracy and mean cross-entropy.
    class_names : one name per class.
    confusion : counts, rows true and columns predicted.
    per_class : a :class:`ClassMetrics` per class.
    ece : expected calibration error over :attr:`bins` (:class:`CalibrationBin`).
    mistakes : the most confident wrong predictions (:class:`Mistake`), most confident first.
    """

    name = "performance"
    title = "Performance"
    n: int = 0
    accuracy: float | None = None
    loss: float | None = None
    class_names: tuple[str, ...] = ()
    confusion: tuple[tuple[int, ...], ...] = ()
    per_class: tuple[ClassMetrics, ...] = ()
    ece: float | None = None
    bins: tuple[CalibrationBin, ...] = ()
    mistakes: tuple[Mistake, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"available": self.available, "reason": self.reason, "n": self.n,
                "accuracy": self.accuracy, "loss": self.loss,
                "class_names": list(self.class_names),
                "confusion": [list(r) for r in self.confusion],
                "per_class": [r.to_dict() for r in self.per_class],
                "calibration": {"ece": self.ece, "n_bins": len(self.bins),
                                "bins": [b.to_dict() for b in self.bins]},
                "mistakes": [m.to_dict() for m in self.mistakes]}

    @classmethod
    def _read(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        cal = d.get("calibration") or {}
        return {"n": int(d.get("n", 0)), "accuracy": opt_float(d.get("accuracy")),
                "loss": opt_float(d.get("loss")),
                "class_names": tuple(str(c) for c in d.get("class_names") or ()),
                "confusion": tuple(tuple(int(v) for v in r) for r in d.get("confusion") or ()),
                "per_class": tuple(ClassMetrics.from_dict(r) for r in d.get("per_class") or ()),
                "ece": opt_float(cal.get("ece")),
                "bins": tuple(CalibrationBin.from_dict(b) for b in cal.get("bins") or ()),
                "mistakes": tuple(Mistake.from_dict(m) for m in d.get("mistakes") or ())}
