"""One-call audits: ``explain.audit(model, data, history=...) -> Report``.

The :class:`Report` holds data only (JSON is canonical); :mod:`explain.report` renders it as
HTML or Markdown, drawing figures with :mod:`explain.figures`.

``explain.audit`` names both this package and its main function. Once the package is imported,
Python binds ``explain.audit`` to the package, so the package itself is made callable: calling
it calls :func:`audit`, and ``explain.audit(model, data)`` works whichever was imported first.
"""

import sys
import types

from explain.audit.auditor import STAGES, audit, audit_run
from explain.audit.performance import expected_calibration_error, performance_summary
from explain.audit.report import SCHEMA, Report

__all__ = ["audit", "audit_run", "Report", "SCHEMA", "STAGES", "performance_summary",
           "expected_calibration_error"]


class _CallableModule(types.ModuleType):
    """This package, callable as :func:`audit`."""

    def __call__(self, *args, **kwargs):
        return audit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
