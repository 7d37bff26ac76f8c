"""The one-line answer at the top of a report, from its findings.

A run with no WARN, FAIL or ERROR reads healthy (PASS); SKIPPED findings (checks that did not
apply or lacked their data) are listed apart as "not checked" and are never counted as problems.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from explain.findings import Finding, Severity

__all__ = ["AuditVerdict", "NOTHING_CHECKED"]

NOTHING_CHECKED = "No checks ran: nothing was found, and nothing was verified."


def _plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


@dataclass(frozen=True)
class AuditVerdict:
    """The report's verdict: a :class:`explain.Severity` and one sentence.

    Examples
    --------
    >>> ok = Finding("overfitting", Severity.PASS, "gap 0.01")
    >>> skip = Finding("spectral", Severity.SKIPPED, "no weight matrices")
    >>> v = AuditVerdict.of([ok, skip])
    >>> v.severity.value, v.headline
    ('pass', 'Healthy: 1 of 1 checks passed; 1 not checked (listed apart).')
    >>> AuditVerdict.of([Finding("non-finite", Severity.FAIL, "NaN loss")]).headline
    '1 problem needs attention: non-finite (fail).'
    """

    severity: Severity
    headline: str

    @classmethod
    def of(cls, findings: Sequence[Finding]) -> AuditVerdict:
        """The verdict of ``findings``: the worst problem, else healthy, else nothing checked.

        Severity is SKIPPED when no check ran (nothing verified is not a pass), PASS when no
        finding is WARN or worse (INFO notes do not make a run unhealthy), else the worst.
        """
        checked = [f for f in findings if f.severity != Severity.SKIPPED]
        skipped = len(findings) - len(checked)
        bad = [f for f in checked if f.severity >= Severity.WARN]
        if bad:
            names = ", ".join(f"{f.check} ({f.severity.value})" for f in bad[:5])
            more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
            headline = (f"{len(bad)} {_plural(len(bad), 'problem needs', 'problems need')} "
                        f"attention: {names}{more}.")
            return cls(max(f.severity for f in bad), headline)
        if not checked:
            extra = (f" {skipped} {_plural(skipped, 'check', 'checks')} did not apply (listed "
                     "apart)." if skipped else "")
            return cls(Severity.SKIPPED, NOTHING_CHECKED + extra)
        info = sum(f.severity == Severity.INFO for f in checked)
        notes = ([f"{info} could not fully run (see their notes)"] if info else []) + (
            [f"{skipped} not checked (listed apart)"] if skipped else [])
        return cls(Severity.PASS, f"Healthy: {len(checked) - info} of {len(checked)} checks "
                                  "passed" + "".join("; " + n for n in notes) + ".")

    def to_dict(self) -> dict[str, Any]:
        return {"severity": self.severity.value, "headline": self.headline}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AuditVerdict:
        return cls(Severity(d["severity"]), str(d["headline"]))
