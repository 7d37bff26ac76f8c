"""Data-randomization test (Adebayo et al. 2018, "Sanity Checks for Saliency Maps", Sec. 4).

The same architecture is trained on a copy of the training data whose labels were permuted, so
it can only memorize: nothing it learns relates inputs to labels. The explanation is recomputed
with it for the same inputs and classes. An explanation that reflects what the model learned
from the data must change: its Spearman rank correlation with the original map drops towards
zero. One that stays correlated reflects the input or the architecture, not the learned
relation, and fails the test.

The permuted-label model must be built by the caller (it needs the training recipe):
``explain.evaluate(model, x, attr, data_model=twin)``; zoo runs build it with
:func:`zoo.learning.permuted_label_model` (``Run.audit(data_sanity=True)``). Without it the
metric is opt-in and not run. The correlation is the model-randomization test's
(:func:`explain.quality.sanity.map_correlations`, signed or ``sanity_abs``), graded against
``max_data_sanity_correlation`` (:mod:`explain.quality.thresholds`); a failure makes the verdict
``fails-sanity``.
"""

from __future__ import annotations

from explain._core.tensors import device_of
from explain.quality._common import real_mask, to_list
from explain.quality.base import (
    Criterion,
    MetricContext,
    MetricResult,
    TrustMetric,
    register_metric,
)
from explain.quality.sanity import correlation_criterion, map_correlations

__all__ = ["DataSanity", "NO_DATA_MODEL"]

#: Why the metric does not apply when no permuted-label model was given.
NO_DATA_MODEL = ("needs the model retrained on permuted labels: pass data_model=... (zoo runs: "
                 "Run.audit(data_sanity=True) builds it)")


@register_metric("data_sanity")
class DataSanity(TrustMetric):
    """Rank correlation with the map of the model trained on permuted labels (per sample)."""

    title = "Sanity (data randomization)"
    thresholds = ("max_data_sanity_correlation",)
    opt_in = True

    def not_applicable(self, context: MetricContext) -> str:
        return NO_DATA_MODEL if context.data_model is None else ""

    def compute(self, context: MetricContext) -> MetricResult:
        twin = context.data_model
        if twin is None:  # run() checks not_applicable first; a direct call gets the reason
            raise ValueError(NO_DATA_MODEL)
        dev = device_of(twin)
        new = context.explain_fn(twin, context.inputs.to(dev), context.target.to(dev))
        rho = map_correlations(context.values, new, real_mask(context.inputs, context.modality, context.pad_id),
                               context.option("sanity_abs"))
        return MetricResult(self.name, per_sample={"data_sanity": tuple(to_list(rho))})

    def criteria(self, result: MetricResult, context: MetricContext) -> tuple[Criterion, ...]:
        return correlation_criterion("data_sanity", result.median("data_sanity"),
                                     context.threshold("max_data_sanity_correlation"),
                                     "the model trained on permuted labels",
                                     undefined="the data-randomization")

    def describe(self, result: MetricResult) -> str:
        rho = result.median("data_sanity")
        return "" if rho is None else (f"rank correlation {rho:.2f} with the model trained on "
                                       "permuted labels")
