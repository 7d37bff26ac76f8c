"""One-call audits: ``explain.audit(model, data, history=...) -> Report``.

The :class:`Report` holds typed sections (:mod:`explain.auditing.sections`; JSON is canonical);
:mod:`explain.report` renders it as HTML or Markdown, drawing figures with
:mod:`explain.figures`.

The package is named ``auditing`` so that ``explain.audit`` is always the function, whatever was
imported before.
"""

from explain.auditing.auditor import STAGES, audit
from explain.auditing.performance import expected_calibration_error, performance_summary
from explain.auditing.report import SCHEMA, Report
from explain.auditing.verdict import AuditVerdict

__all__ = ["audit", "Report", "AuditVerdict", "SCHEMA", "STAGES", "performance_summary",
           "expected_calibration_error"]
