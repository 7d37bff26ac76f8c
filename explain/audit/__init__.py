"""One-call audits: ``explain.audit(model, data, history=...) -> Report``.

The :class:`Report` holds data only (JSON is canonical); :mod:`explain.report` renders it as
HTML or Markdown, drawing figures with :mod:`explain.figures`.
"""

from explain.audit.auditor import STAGES, audit, audit_run
from explain.audit.performance import expected_calibration_error, performance_summary
from explain.audit.report import SCHEMA, Report

__all__ = ["audit", "audit_run", "Report", "SCHEMA", "STAGES", "performance_summary",
           "expected_calibration_error"]
