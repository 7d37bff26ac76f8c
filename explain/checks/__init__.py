"""Training-health checks: ``explain.diagnose(history, model=None, **thresholds)``.

One check per file in this folder, registered with ``@register_check("id")``; the registry
imports every module here on first use, so a new check is one new file. Every finding says when
it was first seen (``evidence["first_step"]``, ``["first_epoch"]``); :func:`causal_summary`
says which problem came first.

Check ids: overfitting, vanishing-gradients, exploding-gradients, non-finite, dead-units,
saturation, temporal-gradient-decay, spectral, data-sufficiency, unstable-training. Thresholds and their anchors are
listed in :mod:`explain.checks.thresholds`.
"""

from __future__ import annotations

import importlib
import pkgutil

from explain.checks.base import (
    Check,
    CheckContext,
    MissingInput,
    Onset,
    get_check,
    list_checks,
    register_check,
)
from explain.checks.thresholds import THRESHOLDS, Threshold

__all__ = [
    "Check",
    "CheckContext",
    "MissingInput",
    "Onset",
    "THRESHOLDS",
    "causal_summary",
    "Threshold",
    "diagnose",
    "get_check",
    "learning_curve",
    "list_checks",
    "register_check",
]

# Built-in checks in the order findings of equal severity are listed; new files come after.
_ORDER = ("overfitting", "vanishing_gradients", "exploding_gradients", "non_finite", "dead_units",
          "saturation", "temporal_gradient_decay", "spectral", "data_sufficiency")
_loaded = False


def _load_all() -> None:
    """Import every check module once, so their ``@register_check`` decorators run."""
    global _loaded
    if _loaded:
        return
    others = sorted(info.name for info in pkgutil.iter_modules(__path__)
                    if not info.name.startswith("_") and info.name not in _ORDER)
    for name in (*_ORDER, *others):
        importlib.import_module(f"{__name__}.{name}")
    _loaded = True


_load_all()

from explain.checks.causal import causal_summary  # noqa: E402
from explain.checks.data_sufficiency import learning_curve  # noqa: E402
from explain.checks.suite import diagnose  # noqa: E402
