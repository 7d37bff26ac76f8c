"""The :class:`Report`: a frozen value holding an audit's typed sections (never its figures).

JSON is the canonical form (:meth:`Report.to_dict`, schema ``deepscope.report/2``); HTML and
Markdown are rendered from the typed value by :mod:`explain.report`. The JSON is strict: it goes
through :mod:`explain._core.jsoncodec` (a non-finite number becomes ``null`` and its JSON pointer
is listed under ``"nonfinite_values"``), so :meth:`Report.from_dict` restores it exactly. Files
of schema ``deepscope.report/1`` still load (:func:`upgrade_v1`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from explain._core.io import atomic_write_text
from explain._core.jsoncodec import decode, dumps, encode
from explain._validation import check_choice
from explain.auditing.sections import SECTIONS, Section, section_type
from explain.auditing.sections._base import ByValue, mapping
from explain.auditing.verdict import AuditVerdict
from explain.errors import CorruptRunError, InvalidTypeError
from explain.findings import Finding, Severity

__all__ = ["Report", "SCHEMA", "SCHEMA_V1", "upgrade_v1"]

SCHEMA = "deepscope.report/2"
SCHEMA_V1 = "deepscope.report/1"
_FORMATS = {".html": "html", ".htm": "html", ".json": "json", ".md": "markdown"}
_FIX = "Re-create the report with explain.audit(...)."
S = TypeVar("S", bound=Section)


def _sections(given: Any) -> tuple[Section, ...]:
    """One section per registered type, in :data:`SECTIONS` order (missing ones unavailable);
    sections of types outside the registry follow them."""
    items = tuple(given.values()) if isinstance(given, Mapping) else tuple(given)
    bad = [type(s).__name__ for s in items if not isinstance(s, Section)]
    if bad:
        raise InvalidTypeError("Report 'sections' must be report Section objects "
                               f"(explain.auditing.sections). Got {bad} instead.")
    by_type = {type(s): s for s in items}
    if len(by_type) != len(items):
        raise InvalidTypeError("Report 'sections' must hold at most one section of each type. "
                               f"Got {[type(s).__name__ for s in items]}.")
    known = tuple(by_type.pop(kind, None) or kind.unavailable("This section was not computed.")
                  for kind in SECTIONS)
    return known + tuple(by_type.values())


@dataclass(frozen=True, eq=False)
class Report(ByValue):
    """The result of :func:`explain.audit`: verdict, findings and the typed sections.

    Attributes
    ----------
    title : what was audited.
    findings : every :class:`explain.Finding`, worst first (SKIPPED ones last: see
        :attr:`not_checked`).
    sections : one :class:`~explain.auditing.sections.Section` per type in
        :data:`~explain.auditing.sections.SECTIONS`; read one with :meth:`section`.
    verdict : the :class:`~explain.auditing.verdict.AuditVerdict` (computed from the findings
        when not given).
    timings : seconds per stage of the audit.
    created : ISO-8601 UTC time the report was made.
    schema : the JSON schema version, ``"deepscope.report/2"``.

    Examples
    --------
    >>> from explain.auditing.sections import PerformanceSection
    >>> r = Report(title="demo", findings=(Finding("overfitting", Severity.WARN, "gap 0.2"),))
    >>> r.verdict.severity.value, Report.from_dict(r.to_dict()) == r
    ('warn', True)
    >>> r.section(PerformanceSection).available
    False
    """

    title: str = "deepscope audit"
    findings: tuple[Finding, ...] = ()
    sections: tuple[Section, ...] = ()
    verdict: AuditVerdict | None = None
    timings: dict[str, float] = field(default_factory=dict)
    created: str = ""
    schema: str = SCHEMA

    def __post_init__(self) -> None:
        if any(not isinstance(f, Finding) for f in self.findings):
            raise InvalidTypeError("Report 'findings' must be explain.Finding objects. Got "
                                   f"{[type(f).__name__ for f in self.findings]} instead.")
        findings = tuple(sorted(self.findings, key=lambda f: -f.severity.rank))
        object.__setattr__(self, "findings", findings)
        object.__setattr__(self, "sections", _sections(self.sections))
        object.__setattr__(self, "timings", {str(k): float(v) for k, v in self.timings.items()})
        if self.verdict is None:
            object.__setattr__(self, "verdict", AuditVerdict.of(findings))

    def section(self, kind: type[S]) -> S:
        """The section of type ``kind``, e.g. ``report.section(PerformanceSection).accuracy``."""
        found = next((s for s in self.sections if type(s) is kind), None)
        if found is None:
            raise InvalidTypeError(f"Report has no section of type {kind.__name__}. Its "
                                   f"sections: {[type(s).__name__ for s in self.sections]}.")
        return found  # type: ignore[return-value]

    @property
    def severity(self) -> Severity:
        """The verdict's severity."""
        return self._verdict.severity

    @property
    def headline(self) -> str:
        """The verdict's one-line answer."""
        return self._verdict.headline

    @property
    def _verdict(self) -> AuditVerdict:
        if self.verdict is None:  # pragma: no cover - __post_init__ always sets it
            raise CorruptRunError("Report.verdict is missing; re-create the report.")
        return self.verdict

    @property
    def checked(self) -> tuple[Finding, ...]:
        """The findings of checks that ran (every severity but SKIPPED), worst first."""
        return tuple(f for f in self.findings if f.severity != Severity.SKIPPED)

    @property
    def not_checked(self) -> tuple[Finding, ...]:
        """SKIPPED findings: checks that did not apply or lacked data (``summary`` says why)."""
        return tuple(f for f in self.findings if f.severity == Severity.SKIPPED)

    def findings_at_least(self, severity: Severity | str) -> list[Finding]:
        """Findings whose severity is ``severity`` or worse."""
        level = Severity(check_choice(getattr(severity, "value", severity), "severity",
                                      [s.value for s in Severity], owner="Report"))
        return [f for f in self.findings if f.severity >= level]

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON form (strict: non-finite numbers are ``null`` plus their path)."""
        assert self.verdict is not None  # set in __post_init__
        return encode({
            "schema": self.schema, "title": self.title, "created": self.created,
            "verdict": self.verdict.to_dict(),
            "findings": [f.to_dict() for f in self.checked],
            "not_checked": [f.to_dict() for f in self.not_checked],
            "sections": {s.name: s.to_dict() for s in self.sections},
            "timings": dict(self.timings)}, always=True)

    def to_json(self, indent: int | None = 1) -> str:
        """:meth:`to_dict` as strict JSON text."""
        return dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Report:
        """Rebuild a report from :meth:`to_dict`'s output (schema /2, or /1), validating it."""
        if not isinstance(d, Mapping):
            raise InvalidTypeError(f"Report.from_dict needs a dict. Got {type(d).__name__} instead.")
        schema = d.get("schema")
        if schema not in (SCHEMA, SCHEMA_V1):
            raise CorruptRunError(f"Report 'schema' must be {SCHEMA!r} (or {SCHEMA_V1!r}). Got "
                                  f"{schema!r} instead; re-create the report with this version "
                                  "of deepscope.")
        data = decode(d, what="Report")
        if schema == SCHEMA_V1:
            data = upgrade_v1(data)
        try:
            findings = tuple(Finding.from_dict(f) for f in
                             [*(data.get("findings") or []), *(data.get("not_checked") or [])])
            verdict = AuditVerdict.from_dict(data["verdict"]) if data.get("verdict") else None
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise CorruptRunError(f"Report 'findings' or 'verdict' are malformed: {exc}. "
                                  f"{_FIX}") from exc
        return cls(title=str(data.get("title", "")), findings=findings,
                   sections=_read_sections(data.get("sections") or {}), verdict=verdict,
                   timings=dict(data.get("timings") or {}), created=str(data.get("created", "")))

    def render(self, fmt: str) -> str:
        """The report as ``"html"``, ``"markdown"`` or ``"json"`` text."""
        fmt = check_choice(fmt, "fmt", ["html", "markdown", "json"], owner="Report.render")
        if fmt == "json":
            return self.to_json()
        if fmt == "html":
            from explain.report.html import render_html
            return render_html(self)
        from explain.report.markdown import render_markdown
        return render_markdown(self)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the report; the extension (.html, .json, .md) picks the format. Atomic: a
        reader never sees half a report (:func:`explain._core.io.atomic_write_text`)."""
        path = Path(path)
        fmt = _FORMATS.get(path.suffix.lower())
        if fmt is None:
            check_choice(path.suffix or "(none)", "path extension", list(_FORMATS),
                         owner="Report.save")
        atomic_write_text(path, self.render(str(fmt)))
        return path


def _read_sections(raw: Any) -> tuple[Section, ...]:
    raw = mapping(raw, "Report 'sections'")
    out = []
    for name, value in raw.items():
        kind = section_type(str(name))
        if kind is None:
            raise CorruptRunError(
                f"Report section {name!r} is unknown to this version of deepscope (known: "
                f"{', '.join(s.name for s in SECTIONS)}). Upgrade deepscope to read it.")
        out.append(kind.from_dict(value))
    return tuple(out)


def upgrade_v1(data: Mapping[str, Any]) -> dict[str, Any]:
    """A ``deepscope.report/1`` document (non-finite values restored) as a ``/2`` document.

    /1 had no SKIPPED grade and no ``"not_checked"`` list, stored each method's verdict next to
    its quality (/2 derives it from the quality) and a verdict computed with the older rules, so
    the verdict is recomputed from the findings (an INFO-only run now reads healthy).

    Examples
    --------
    >>> upgrade_v1({"schema": "deepscope.report/1", "verdict": {"severity": "info"},
    ...             "findings": [], "sections": {}})
    {'schema': 'deepscope.report/2', 'findings': [], 'sections': {}, 'not_checked': []}
    """
    out = {k: v for k, v in data.items() if k != "verdict"}
    out["schema"] = SCHEMA
    out.setdefault("not_checked", [])
    return out
