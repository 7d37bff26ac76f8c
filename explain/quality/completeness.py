"""Completeness (Sundararajan et al. 2017): do the attributions add up to the prediction?

For path and Shapley methods the attributions sum to ``f(x) - f(baseline)`` (logit of the
explained class). The error is reported relative to ``|f(x) - f(baseline)|``, recomputed from the
values and the model for float inputs (not trusted from the method); token attributions live in
embedding space, so there the method's ``convergence_delta`` is used. Graded against
``max_completeness_error`` (:mod:`explain.quality.thresholds`).
"""

from __future__ import annotations

import torch
from torch import nn

from explain.errors import AttributionError
from explain.quality._common import COMPLETE_METHODS, class_scores, to_list
from explain.quality.base import (
    Criterion,
    MetricContext,
    MetricResult,
    TrustMetric,
    register_metric,
)

__all__ = ["Completeness", "completeness_error"]


def _baseline_scores(model: nn.Module, inputs: torch.Tensor, baselines: torch.Tensor | None,
                     target: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Logit of the target at the baseline, ``[n]``: per sample, or the mean over a baseline set."""
    n = inputs.shape[0]
    if baselines is None or baselines.dim() != inputs.dim() or (
            not inputs.is_floating_point() and baselines.is_floating_point()):
        b = torch.zeros_like(inputs)
    else:
        b = baselines.detach().cpu().to(inputs.dtype)
    if b.shape == inputs.shape:
        return class_scores(model, b, target, batch_size=batch_size, probability=False)
    if b.shape[1:] == inputs.shape[1:]:
        # A baseline distribution (GradientSHAP, DeepLiftSHAP): f(b) is the expectation over it.
        rows = b.repeat_interleave(n, 0) if b.shape[0] > 1 else b.expand_as(inputs)
        t = target.repeat(b.shape[0]) if b.shape[0] > 1 else target
        s = class_scores(model, rows, t, batch_size=batch_size, probability=False)
        return s.view(b.shape[0], n).mean(0) if b.shape[0] > 1 else s
    zeros = torch.zeros_like(inputs)
    return class_scores(model, zeros, target, batch_size=batch_size, probability=False)


def completeness_error(model: nn.Module, inputs: torch.Tensor, values: torch.Tensor,
                       target: torch.Tensor, baselines: torch.Tensor | None, *,
                       delta: torch.Tensor | None = None,
                       batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Relative completeness error per sample and ``f(x) - f(baseline)``.

    Returns ``(error [n], gap [n])`` with ``error = |sum(values) - gap| / |gap|`` (NaN where the
    gap is below 1e-6: the method had nothing to explain). For float inputs the gap is recomputed
    from the model; token ids are attributed in embedding space, where the baseline is not a
    sequence of ids the model could be run on, so the method's own ``delta``
    (``sum(values) - gap``) is used there.
    """
    total = values.reshape(values.shape[0], -1).sum(1)
    if not inputs.is_floating_point():
        if delta is None:
            raise AttributionError(
                "completeness of a token attribution needs the method's convergence_delta "
                "(the baseline lives in embedding space). Recompute it with explain.attribute.")
        gap = total - delta.detach().double().cpu().reshape(-1)[:total.shape[0]]
    else:
        fx = class_scores(model, inputs, target, batch_size=batch_size, probability=False)
        gap = fx - _baseline_scores(model, inputs, baselines, target, batch_size)
    err = (total - gap).abs() / gap.abs()
    err[gap.abs() < 1e-6] = float("nan")
    return err, gap



@register_metric("completeness")
class Completeness(TrustMetric):
    """Relative completeness error per sample (path and Shapley methods only)."""

    title = "Completeness"
    thresholds = ("max_completeness_error",)

    def not_applicable(self, context: MetricContext) -> str:
        if context.method in COMPLETE_METHODS:
            return ""
        return (f"not applicable to {context.method!r} (only path and Shapley methods sum to "
                f"f(x) - f(baseline))")

    def compute(self, context: MetricContext) -> MetricResult:
        err, _gap = completeness_error(context.model, context.inputs, context.values,
                                       context.target, context.baselines,
                                       delta=context.convergence_delta,
                                       batch_size=context.batch_size)
        return MetricResult(self.name, per_sample={"completeness": tuple(to_list(err))})

    def criteria(self, result: MetricResult, context: MetricContext) -> tuple[Criterion, ...]:
        err = result.median("completeness")
        if err is None:
            return ()
        limit = context.threshold("max_completeness_error")
        return (Criterion("completeness", err <= limit,
                          f"completeness error {err:.1%} of |f(x)-f(b)| > {limit:.0%}"),)

    def describe(self, result: MetricResult) -> str:
        err = result.median("completeness")
        return "" if err is None else f"completeness error {err:.1%} of |f(x)-f(b)|"
