"""Typed results of the checks: :class:`Severity` and :class:`Finding`."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Severity", "Finding"]


class Severity(str, enum.Enum):
    """How bad a finding is; ordered PASS < INFO < WARN < FAIL < ERROR.

    ERROR means the check itself could not run (its exception is in the evidence).
    """

    PASS = "pass"
    INFO = "info"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __lt__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank


_RANK = {Severity.PASS: 0, Severity.INFO: 1, Severity.WARN: 2, Severity.FAIL: 3, Severity.ERROR: 4}


@dataclass(frozen=True)
class Finding:
    """The verdict of one check.

    Attributes
    ----------
    check : the check id, e.g. ``"overfitting"``.
    severity : a :class:`Severity`.
    summary : one sentence with the numbers behind the verdict.
    evidence : the values behind it (JSON values: per layer / per epoch series, thresholds used).
    remedy : what to do about it ("" when nothing needs doing).
    """

    check: str
    severity: Severity
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    remedy: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "severity": self.severity.value, "summary": self.summary,
                "evidence": self.evidence, "remedy": self.remedy}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        return cls(check=d["check"], severity=Severity(d["severity"]), summary=d["summary"],
                   evidence=dict(d.get("evidence") or {}), remedy=d.get("remedy", ""))
