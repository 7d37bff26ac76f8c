"""The robustness section: accuracy under corruptions of growing severity."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from explain.auditing.sections._base import Section, opt_float

__all__ = ["RobustnessSection", "CorruptionCurve"]


@dataclass(frozen=True)
class CorruptionCurve:
    """Accuracy of one corruption at severities 1..5, and relative to clean accuracy."""

    name: str
    accuracy: tuple[float, ...]
    relative: tuple[float, ...]
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "accuracy": list(self.accuracy),
                "relative": list(self.relative), "description": self.description}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CorruptionCurve:
        return cls(str(d["name"]), tuple(float(v) for v in d["accuracy"]),
                   tuple(float(v) for v in d["relative"]), str(d.get("description") or ""))


@dataclass(frozen=True, eq=False, kw_only=True)
class RobustnessSection(Section):
    """Accuracy under each corruption of the modality at five severities.

    Attributes
    ----------
    modality : the inputs' modality (``"image"``, ``"sequence"``, ``"text"``, ``"tabular"``).
    n : samples corrupted (a seeded subset).  seed : the corruption seed.
    clean_accuracy : accuracy on those samples uncorrupted.
    curves : a :class:`CorruptionCurve` per corruption.
    """

    name = "robustness"
    title = "Robustness"
    modality: str = ""
    n: int = 0
    seed: int = 0
    clean_accuracy: float | None = None
    curves: tuple[CorruptionCurve, ...] = ()

    @classmethod
    def _read(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(super()._read(d))
        out["curves"] = tuple(CorruptionCurve.from_dict(c) for c in d.get("curves") or ())
        out["clean_accuracy"] = opt_float(d.get("clean_accuracy"))
        return out
