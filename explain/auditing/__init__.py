"""One-call audits: ``explain.audit(model, data, history=...) -> Report``.

The :class:`Report` holds data only (JSON is canonical); :mod:`explain.report` renders it as
HTML or Markdown, drawing figures with :mod:`explain.figures`.

The package is named ``auditing`` so that ``explain.audit`` is always the function, whatever was
imported before.
"""

from explain.auditing.auditor import STAGES, audit, audit_run
from explain.auditing.performance import expected_calibration_error, performance_summary
from explain.auditing.report import SCHEMA, Report

__all__ = ["audit", "audit_run", "Report", "SCHEMA", "STAGES", "performance_summary",
           "expected_calibration_error"]

