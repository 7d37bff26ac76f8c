"""Infidelity (Yeh et al. 2019, ``captum.metrics.infidelity``, ``normalize=True``).

How badly ``perturbation . attribution`` predicts the change of the logit; normalized so it does
not depend on the scale of the map. Maps that already multiply by ``input - baseline``
(integrated gradients, DeepLift, SHAP, occlusion, ...) are tested with random subset removal
(units replaced by the baseline); local maps (saliency, guided backprop, ...) with small Gaussian
noise. Reported, not graded: it is in squared logit units, so compare methods on the same model.
Not defined for token ids (they cannot be nudged); padding is never perturbed.
"""

from __future__ import annotations

import torch
from torch import nn

from explain._core.tensors import device_of
from explain.card import Modality
from explain.errors import AttributionError
from explain.quality._common import (
    MULTIPLY_BY_INPUTS,
    TOKEN_NOISE_NOTE,
    chunk_size,
    float_baseline,
    real_mask,
    spread,
    to_list,
)
from explain.quality.base import (
    MetricContext,
    MetricOption,
    MetricResult,
    TrustMetric,
    register_metric,
)

__all__ = ["Infidelity", "infidelity_scores"]


def infidelity_scores(model: nn.Module, inputs: torch.Tensor, values: torch.Tensor,
                     target: torch.Tensor, baselines: torch.Tensor | None, method: str,
                     modality: Modality, *, n_perturb: int = 16, noise: float = 0.1,
                     remove_fraction: float = 0.25, seed: int = 0,
                     batch_size: int = 256, pad_id: int = 0) -> torch.Tensor:
    """Normalized infidelity per sample ``[n]`` (lower is better; captum's definition)."""
    from captum.metrics import infidelity as captum_infidelity
    from captum.metrics import infidelity_perturb_func_decorator

    device = device_of(model)
    mask = real_mask(inputs, modality, pad_id).to(device)
    x = inputs.to(device).float()
    base = float_baseline(inputs, baselines, modality, pad_id).to(device)
    sigma = noise * spread(inputs, mask.cpu())
    gen = torch.Generator(device="cpu").manual_seed(seed)
    global_map = method in MULTIPLY_BY_INPUTS

    def _expand(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        reps = like.shape[0] // t.shape[0]
        return t.repeat_interleave(reps, 0) if reps > 1 else t

    @infidelity_perturb_func_decorator(global_map)
    def perturb(xs: torch.Tensor, bs: torch.Tensor | None = None) -> torch.Tensor:
        m = _expand(mask, xs)
        if global_map:
            drop = (torch.rand(xs.shape, generator=gen) < remove_fraction).to(xs.device) & m
            return torch.where(drop, bs if bs is not None else torch.zeros_like(xs), xs)
        eps = torch.randn(xs.shape, generator=gen).to(xs.device) * sigma
        return xs - eps * m

    try:
        out = captum_infidelity(
            model, perturb, x, values.to(device).float(),
            baselines=base if global_map else None, target=target.to(device),
            n_perturb_samples=n_perturb,
            max_examples_per_batch=chunk_size(batch_size, inputs, n_perturb), normalize=True)
    except Exception as exc:  # captum failures become our typed error
        raise AttributionError(
            f"captum.metrics.infidelity failed for method {method!r}: {exc}. Drop 'infidelity' "
            f"from metrics= to evaluate the rest.") from exc
    return out.detach().double().cpu()



@register_metric("infidelity")
class Infidelity(TrustMetric):
    """Normalized infidelity per sample (lower is better); reported, not graded."""

    title = "Infidelity"
    graded = False
    options = (
        MetricOption("infidelity_perturbations", 16,
                     "Perturbations drawn per sample (captum's n_perturb_samples).", minimum=1),
    )

    def not_applicable(self, context: MetricContext) -> str:
        return TOKEN_NOISE_NOTE if context.modality is Modality.TEXT else ""

    def compute(self, context: MetricContext) -> MetricResult:
        scores = infidelity_scores(
            context.model, context.inputs, context.values, context.target, context.baselines,
            context.method, context.modality,
            n_perturb=context.option("infidelity_perturbations"), seed=context.seed,
            batch_size=context.batch_size, pad_id=context.pad_id)
        return MetricResult(self.name, per_sample={"infidelity": tuple(to_list(scores))})

    def describe(self, result: MetricResult) -> str:
        value = result.median("infidelity")
        return "" if value is None else f"infidelity {value:.3g}"
