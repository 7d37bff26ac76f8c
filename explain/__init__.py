"""deepscope's diagnostics library: training health, attributions, trust, audits, reports.

Public names are listed in ``__all__``; everything else is private.
"""

from explain.card import Modality, ModelCard, card_of
from explain.errors import (
    AttributionError,
    CorruptRunError,
    DataMismatchError,
    DataNotFoundError,
    DeepscopeError,
    InvalidInputError,
    InvalidTypeError,
    MissingExtraError,
    RunExistsError,
    RunLockedError,
    RunWriteError,
    TrainingDivergedError,
    UnknownNameError,
    UnsafeFileError,
)
from explain.findings import Finding, Severity

__version__ = "0.1.0"

# Heavier parts load on first use, so `import explain` stays fast.
_LAZY = {
    "Attribution": "explain.attribution.result",
    "TrainingMonitor": "explain.monitor",
    "History": "explain.monitor",
    "diagnose": "explain.checks",
    "list_checks": "explain.checks",
    "attribute": "explain.attribution",
    "list_methods": "explain.attribution",
    "evaluate": "explain.quality",
    "Quality": "explain.quality",
    "Verdict": "explain.quality",
    "agreement": "explain.quality",
    "list_metrics": "explain.quality",
    "audit": "explain.auditing",
    "Report": "explain.auditing",
    "calibrate": "explain.auditing.calibration",
    "drift": "explain.auditing.shift",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'explain' has no attribute {name!r}")

__all__ = [
    "__version__",
    "Severity",
    "Finding",
    "Attribution",
    "TrainingMonitor",
    "History",
    "diagnose",
    "list_checks",
    "attribute",
    "list_methods",
    "evaluate",
    "Quality",
    "Verdict",
    "agreement",
    "list_metrics",
    "audit",
    "Report",
    "calibrate",
    "drift",
    "Modality",
    "ModelCard",
    "card_of",
    "DeepscopeError",
    "InvalidInputError",
    "UnknownNameError",
    "DataMismatchError",
    "CorruptRunError",
    "UnsafeFileError",
    "InvalidTypeError",
    "DataNotFoundError",
    "TrainingDivergedError",
    "AttributionError",
    "MissingExtraError",
    "RunExistsError",
    "RunLockedError",
    "RunWriteError",
]
