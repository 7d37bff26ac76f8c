"""Typed results of the checks: :class:`Severity` and :class:`Finding`."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from explain._core.jsoncodec import decode, encode

__all__ = ["Severity", "Finding"]


class Severity(str, enum.Enum):
    """How bad a finding is; ordered SKIPPED < PASS < INFO < WARN < FAIL < ERROR.

    SKIPPED means the check did not apply or lacked its data (the finding says why); ERROR means
    the check itself could not run (its exception is in the evidence). The class owns both the
    order and the presentation (:attr:`label`, :attr:`icon`, :attr:`color`, :attr:`mark`,
    :attr:`material`), so HTML, Markdown, the CLI and the dashboard show every grade alike.

    Examples
    --------
    >>> Severity.WARN > Severity.PASS > Severity.SKIPPED, Severity.FAIL.icon, Severity.PASS.color
    (True, '❌', '#009E73')
    """

    SKIPPED = "skipped"
    PASS = "pass"
    INFO = "info"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"

    @property
    def rank(self) -> int:
        """Position in the order (SKIPPED 0 ... ERROR 5)."""
        return _RANK[self]

    @property
    def label(self) -> str:
        """Upper-case label: ``"WARN"``."""
        return self.value.upper()

    @property
    def icon(self) -> str:
        """Emoji for Markdown and plain text."""
        return _PRESENTATION[self].icon

    @property
    def mark(self) -> str:
        """A one-character symbol for table cells without emoji fonts."""
        return _PRESENTATION[self].mark

    @property
    def color(self) -> str:
        """Hex colour (colour-blind safe, Okabe-Ito) for HTML badges and figures."""
        return _PRESENTATION[self].color

    @property
    def material(self) -> str:
        """Streamlit Markdown icon (Material Symbols ship with Streamlit)."""
        return _PRESENTATION[self].material

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


@dataclass(frozen=True)
class _Look:
    icon: str
    mark: str
    color: str
    material: str


_RANK = {s: i for i, s in enumerate(Severity)}
#: The one presentation table: every renderer reads a grade's look from here.
_PRESENTATION = {
    Severity.SKIPPED: _Look("⏭️", "–", "#BBBBBB", ":gray[:material/skip_next:]"),
    Severity.PASS: _Look("✅", "✔", "#009E73", ":green[:material/check_circle:]"),
    Severity.INFO: _Look("ℹ️", "ℹ", "#56B4E9", ":blue[:material/info:]"),
    Severity.WARN: _Look("⚠️", "⚠", "#E69F00", ":orange[:material/warning:]"),
    Severity.FAIL: _Look("❌", "✖", "#D55E00", ":red[:material/cancel:]"),
    Severity.ERROR: _Look("💥", "‼", "#7F7F7F", ":red[:material/error:]"),
}


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
        """Strict JSON through :mod:`explain._core.jsoncodec`: a non-finite evidence value is
        ``null`` with its JSON pointer under ``"nonfinite_values"`` (listed only when there is one).

        Examples
        --------
        >>> f = Finding("non-finite", Severity.FAIL, "loss is inf", {"loss": float("inf")})
        >>> d = f.to_dict()
        >>> d["evidence"], d["nonfinite_values"], Finding.from_dict(d) == f
        ({'loss': None}, [{'path': '/evidence/loss', 'value': 'inf'}], True)
        """
        return encode({"check": self.check, "severity": self.severity.value,
                       "summary": self.summary, "evidence": self.evidence, "remedy": self.remedy})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Finding:
        """The inverse of :meth:`to_dict` (non-finite values restored)."""
        d = decode(d, what="Finding")
        return cls(check=d["check"], severity=Severity(d["severity"]), summary=d["summary"],
                   evidence=dict(d.get("evidence") or {}), remedy=d.get("remedy", ""))
