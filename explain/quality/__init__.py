"""Trust in explanations: is an attribution faithful to the model, and does it depend on it?

:func:`evaluate` runs the registered trust metrics on the first ``n_samples`` of an
:class:`explain.Attribution` and adds their criteria up to a :class:`Verdict`
(``trustworthy`` / ``doubtful`` / ``fails-sanity``; :attr:`Verdict.severity` places it on the
common :class:`explain.Severity` scale). One metric per file, registered like the checks
(:mod:`explain.quality.base`), in this order (:func:`list_metrics`):

* ``completeness`` (:mod:`~explain.quality.completeness`, path and Shapley methods only): do
  the attributions add up to ``f(x) - f(baseline)``?
* ``faithfulness`` (:mod:`~explain.quality.faithfulness`): deletion and insertion curves
  against the same curves in random order.
* ``sanity`` (:mod:`~explain.quality.sanity`, Adebayo et al. 2018): does the map change when
  the model is randomized layer by layer?
* ``infidelity`` (:mod:`~explain.quality.infidelity`, Yeh et al. 2019): reported, not graded.
* ``sensitivity`` (:mod:`~explain.quality.sensitivity`): max-sensitivity under small noise.
* ``data_sanity`` (:mod:`~explain.quality.data_sanity`, Adebayo et al. 2018, opt-in): does the
  map change for the same architecture trained on permuted labels (``data_model=...``)?

Every threshold of the verdict, its meaning and its anchor (the paper or rule of thumb behind
the number) is in :mod:`explain.quality.thresholds`. :func:`agreement` gives the method x method
matrix of median per-sample rank correlations when several attributions were computed.
"""

from __future__ import annotations

import importlib
import pkgutil

from explain.quality.base import (
    MetricContext,
    MetricResult,
    MetricStatus,
    TrustMetric,
    get_metric,
    list_metrics,
    register_metric,
)
from explain.quality.result import Quality, Verdict
from explain.quality.thresholds import DEFAULT_THRESHOLDS, THRESHOLDS, TrustThreshold

# Built-in metrics in the order evaluate computes them; new metric files come after.
_ORDER = ("completeness", "faithfulness", "sanity", "infidelity", "sensitivity",
          "data_sanity")
# Modules of this package that are not metrics.
_SUPPORT = frozenset({"base", "evaluation", "method_agreement", "result", "thresholds"})
_loaded = False


def _load_all() -> None:
    """Import every metric module once, so their ``@register_metric`` decorators run."""
    global _loaded
    if _loaded:
        return
    others = sorted(info.name for info in pkgutil.iter_modules(__path__)
                    if not info.name.startswith("_") and info.name not in (*_ORDER, *_SUPPORT))
    for name in (*_ORDER, *others):
        importlib.import_module(f"{__name__}.{name}")
    _loaded = True


_load_all()

from explain.quality.evaluation import METRICS, default_explain_fn, evaluate  # noqa: E402
from explain.quality.method_agreement import agreement  # noqa: E402

__all__ = [
    "evaluate",
    "Quality",
    "Verdict",
    "agreement",
    "list_metrics",
    "get_metric",
    "register_metric",
    "TrustMetric",
    "MetricContext",
    "MetricResult",
    "MetricStatus",
    "METRICS",
    "THRESHOLDS",
    "TrustThreshold",
    "DEFAULT_THRESHOLDS",
    "default_explain_fn",
]
