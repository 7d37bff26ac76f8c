"""Max-sensitivity (Yeh et al. 2019, ``captum.metrics.sensitivity_max``): is the map stable?

The largest change of the map, relative to its norm, when the input moves by a small uniform
noise (radius ``sensitivity_radius`` times the input's spread; captum's default radius is 0.02).
Graded against ``max_sensitivity`` (:mod:`explain.quality.thresholds`). Not defined for token ids
(they cannot be nudged); padding is never perturbed.
"""

from __future__ import annotations

import torch
from torch import nn

from explain._core.tensors import device_of
from explain.card import Modality
from explain.errors import AttributionError
from explain.quality._common import (
    TOKEN_NOISE_NOTE,
    ExplainFn,
    chunk_size,
    real_mask,
    spread,
    to_list,
)
from explain.quality.base import (
    Criterion,
    MetricContext,
    MetricOption,
    MetricResult,
    TrustMetric,
    register_metric,
)

__all__ = ["Sensitivity", "sensitivity_scores"]


def sensitivity_scores(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor,
                       explain_fn: ExplainFn, modality: Modality, *, n_perturb: int = 4,
                       radius: float = 0.02, seed: int = 0, batch_size: int = 256,
                       pad_id: int = 0) -> torch.Tensor:
    """Max-sensitivity per sample ``[n]``: ``max ||e(x + u) - e(x)|| / ||e(x)||`` over ``u``."""
    from captum.metrics import sensitivity_max

    device = device_of(model)
    mask = real_mask(inputs, modality, pad_id).to(device)
    r = radius * spread(inputs, mask.cpu())
    gen = torch.Generator(device="cpu").manual_seed(seed)

    def perturb(xs, perturb_radius=None):  # captum passes a tuple of one tensor
        x0 = xs[0] if isinstance(xs, tuple) else xs
        reps = x0.shape[0] // mask.shape[0]
        m = mask.repeat_interleave(reps, 0) if reps > 1 else mask
        u = (torch.rand(x0.shape, generator=gen) * 2 - 1).to(x0.device) * r
        out = x0 + u * m
        return (out,) if isinstance(xs, tuple) else out

    def explanation(xs, target=None):
        x0 = xs[0] if isinstance(xs, tuple) else xs
        with torch.enable_grad():  # captum calls us under no_grad; shap does not re-enable it
            values = explain_fn(model, x0, target)
        return (values.detach().to(device).float(),)  # captum wants a tuple

    try:
        out = sensitivity_max(explanation, inputs.to(device).float(), perturb_func=perturb,
                              n_perturb_samples=n_perturb,
                              max_examples_per_batch=chunk_size(batch_size, inputs, n_perturb),
                              target=target.to(device))
    except Exception as exc:
        raise AttributionError(
            f"captum.metrics.sensitivity_max failed: {exc}. Pass explain_fn= or drop "
            f"'sensitivity' from metrics= to evaluate the rest.") from exc
    return out.detach().double().cpu()


@register_metric("sensitivity")
class Sensitivity(TrustMetric):
    """Max-sensitivity per sample, relative to the map's norm (recomputes the explanation)."""

    title = "Sensitivity"
    thresholds = ("max_sensitivity",)
    options = (
        MetricOption("sensitivity_perturbations", 4,
                     "Perturbed inputs per sample whose explanations are compared.", minimum=1),
        MetricOption("sensitivity_radius", 0.02,
                     "Noise radius as a fraction of the input's spread (captum's default "
                     "perturbation radius).", kind="float", minimum=0, strict=True),
    )

    def not_applicable(self, context: MetricContext) -> str:
        return TOKEN_NOISE_NOTE if context.modality is Modality.TEXT else ""

    def compute(self, context: MetricContext) -> MetricResult:
        scores = sensitivity_scores(
            context.model, context.inputs, context.target, context.explain_fn, context.modality,
            n_perturb=context.option("sensitivity_perturbations"),
            radius=context.option("sensitivity_radius"), seed=context.seed,
            batch_size=context.batch_size, pad_id=context.pad_id)
        return MetricResult(self.name, per_sample={"sensitivity": tuple(to_list(scores))})

    def criteria(self, result: MetricResult, context: MetricContext) -> tuple[Criterion, ...]:
        value = result.median("sensitivity")
        if value is None:
            return ()
        limit = context.threshold("max_sensitivity")
        return (Criterion("sensitivity", value <= limit,
                          f"max-sensitivity {value:.2f} > {limit}"),)

    def describe(self, result: MetricResult) -> str:
        value = result.median("sensitivity")
        return "" if value is None else f"max-sensitivity {value:.2f}"
