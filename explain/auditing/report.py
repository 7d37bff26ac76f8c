"""The :class:`Report`: a frozen value holding an audit's data (never its figures).

JSON is the canonical form (:meth:`Report.to_dict`); HTML and Markdown are rendered from it by
:mod:`explain.report`. The JSON is strict: every non-finite number becomes ``null`` and its path
is listed in ``"nonfinite_values"``, so :meth:`Report.from_dict` restores it exactly.
"""

from __future__ import annotations

import copy
import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from explain._validation import check_choice
from explain.errors import CorruptRunError, InvalidTypeError
from explain.findings import Finding, Severity

__all__ = ["Report", "SCHEMA", "to_json_value", "worst_severity"]

SCHEMA = "deepscope.report/1"
_FORMATS = {".html": "html", ".htm": "html", ".json": "json", ".md": "markdown"}
SECTIONS = ("training", "performance", "explanations", "data_sufficiency", "card")


def to_json_value(value: Any) -> Any:
    """Convert numpy / torch / tuples to plain JSON values (non-finite floats are kept)."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays/scalars, torch tensors
        return to_json_value(value.tolist())
    if hasattr(value, "value") and isinstance(value.value, str):  # str enums
        return value.value
    if hasattr(value, "to_dict"):
        return to_json_value(value.to_dict())
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _strip_nonfinite(value: Any, path: str, found: list[dict[str, str]]) -> Any:
    """Replace non-finite floats by ``None``, recording ``{"path", "value"}`` for each."""
    if isinstance(value, float) and not math.isfinite(value):
        found.append({"path": path, "value": repr(value)})
        return None
    if isinstance(value, dict):
        return {k: _strip_nonfinite(v, f"{path}/{_escape(k)}", found) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_nonfinite(v, f"{path}/{i}", found) for i, v in enumerate(value)]
    return value


def _escape(key: str) -> str:  # JSON-pointer escaping (RFC 6901)
    return key.replace("~", "~0").replace("/", "~1")


def _unescape(key: str) -> str:
    return key.replace("~1", "/").replace("~0", "~")


def _restore(d: dict[str, Any], entries: list[Any]) -> None:
    for entry in entries:
        if not isinstance(entry, Mapping) or entry.get("value") not in ("inf", "-inf", "nan"):
            raise CorruptRunError(
                f"Report 'nonfinite_values' entries must be {{'path': ..., 'value': "
                f"'inf'|'-inf'|'nan'}}. Got {entry!r} instead.")
        parts = [_unescape(p) for p in str(entry.get("path", "")).split("/")[1:]]
        node: Any = d
        try:
            for p in parts[:-1]:
                node = node[int(p)] if isinstance(node, list) else node[p]
            last = int(parts[-1]) if isinstance(node, list) else parts[-1]
            node[last] = float(entry["value"])
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise CorruptRunError(
                f"Report 'nonfinite_values' path {entry.get('path')!r} does not exist in the "
                f"report. Re-create the report with explain.audit(...).") from exc


def worst_severity(findings: list[Finding] | tuple[Finding, ...]) -> Severity:
    """The most severe severity among ``findings`` (PASS when there are none)."""
    return max((f.severity for f in findings), default=Severity.PASS)


@dataclass(frozen=True)
class Report:
    """The result of :func:`explain.audit`: verdict, findings and the data behind every section.

    Attributes
    ----------
    title : what was audited.
    verdict : ``{"severity": ..., "headline": ...}``, the one-line answer at the top.
    findings : every :class:`explain.Finding`, worst first.
    sections : section name -> JSON data; each has ``"available"`` and, when it is not,
        ``"reason"`` (what is missing and how to get it). Names: ``training``, ``performance``,
        ``explanations``, ``data_sufficiency``, ``card``.
    timings : seconds per stage of the audit.
    created : ISO-8601 UTC time the report was made.
    schema : the JSON schema version, ``"deepscope.report/1"``.

    Examples
    --------
    >>> from explain.findings import Finding, Severity
    >>> r = Report(title="demo", findings=(Finding("overfitting", Severity.WARN, "gap 0.2"),))
    >>> r.verdict["severity"], Report.from_dict(r.to_dict()) == r
    ('warn', True)
    """

    title: str = "deepscope audit"
    findings: tuple[Finding, ...] = ()
    sections: dict[str, Any] = field(default_factory=dict)
    verdict: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    created: str = ""
    schema: str = SCHEMA

    def __post_init__(self) -> None:
        if any(not isinstance(f, Finding) for f in self.findings):
            raise InvalidTypeError("Report 'findings' must be explain.Finding objects. Got "
                                   f"{[type(f).__name__ for f in self.findings]} instead.")
        findings = tuple(sorted(self.findings, key=lambda f: -f.severity.rank))
        object.__setattr__(self, "findings", findings)
        object.__setattr__(self, "sections", to_json_value(dict(self.sections)))
        object.__setattr__(self, "timings", {str(k): float(v) for k, v in self.timings.items()})
        if not self.verdict:
            object.__setattr__(self, "verdict", _verdict(findings))

    @property
    def severity(self) -> Severity:
        """The verdict's severity (the worst finding)."""
        return Severity(self.verdict.get("severity", worst_severity(self.findings).value))

    def findings_at_least(self, severity: Severity | str) -> list[Finding]:
        """Findings whose severity is ``severity`` or worse."""
        level = Severity(check_choice(getattr(severity, "value", severity), "severity",
                                      [s.value for s in Severity], owner="Report"))
        return [f for f in self.findings if f.severity >= level]

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON form (strict: non-finite numbers are ``null`` plus a flag)."""
        raw = {"schema": self.schema, "title": self.title, "created": self.created,
               "verdict": dict(self.verdict),
               "findings": [to_json_value(f.to_dict()) for f in self.findings],
               "sections": copy.deepcopy(self.sections), "timings": dict(self.timings)}
        found: list[dict[str, str]] = []
        clean = _strip_nonfinite(raw, "", found)
        clean["nonfinite_values"] = found
        return clean

    def to_json(self, indent: int | None = 1) -> str:
        """:meth:`to_dict` as strict JSON text (``allow_nan=False``)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False, sort_keys=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Report:
        """Rebuild a report from :meth:`to_dict`'s output, validating its shape."""
        if not isinstance(d, Mapping):
            raise InvalidTypeError(f"Report.from_dict needs a dict. Got {type(d).__name__} instead.")
        schema = d.get("schema")
        if schema != SCHEMA:
            raise CorruptRunError(f"Report 'schema' must be {SCHEMA!r}. Got {schema!r} instead; "
                                  "re-create the report with this version of deepscope.")
        data = copy.deepcopy(dict(d))
        _restore(data, list(data.pop("nonfinite_values", None) or []))
        try:
            findings = tuple(Finding.from_dict(f) for f in data.get("findings") or [])
        except (KeyError, ValueError, TypeError) as exc:
            raise CorruptRunError(f"Report 'findings' are malformed: {exc}. Re-create the "
                                  "report with explain.audit(...).") from exc
        sections = data.get("sections") or {}
        if not isinstance(sections, Mapping):
            raise CorruptRunError("Report 'sections' must be a dict of section name -> data. "
                                  f"Got {type(sections).__name__} instead.")
        return cls(title=str(data.get("title", "")), findings=findings, sections=dict(sections),
                   verdict=dict(data.get("verdict") or {}), timings=dict(data.get("timings") or {}),
                   created=str(data.get("created", "")), schema=SCHEMA)

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
        """Write the report; the extension (.html, .json, .md) picks the format. Atomic.

        The text goes to a temporary file in the same folder, is flushed and fsynced, then
        replaces ``path`` in one step, so a reader never sees half a report.
        """
        path = Path(path)
        fmt = _FORMATS.get(path.suffix.lower())
        if fmt is None:
            check_choice(path.suffix or "(none)", "path extension", list(_FORMATS),
                         owner="Report.save")
        text = self.render(fmt)  # type: ignore[arg-type]
        folder = path.parent if str(path.parent) else Path(".")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path


def _verdict(findings: tuple[Finding, ...]) -> dict[str, str]:
    worst = worst_severity(findings)
    bad = [f for f in findings if f.severity >= Severity.WARN]
    if not findings:
        headline = "No checks ran: nothing was found, and nothing was verified."
    elif not bad:
        info = sum(f.severity == Severity.INFO for f in findings)
        headline = (f"No problem found: {len(findings) - info} of {len(findings)} checks passed"
                    + (f"; {info} could not fully run (see their notes)." if info else "."))
    else:
        names = ", ".join(f"{f.check} ({f.severity.value})" for f in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        one = len(bad) == 1
        headline = (f"{len(bad)} problem{'' if one else 's'} need{'s' if one else ''} "
                    f"attention: {names}{more}.")
    return {"severity": worst.value, "headline": headline}
