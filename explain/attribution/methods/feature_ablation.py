"""Feature ablation: replace one feature group at a time by the baseline (captum)."""

from __future__ import annotations

import torch
from captum import attr

from explain.attribution.base import Chunk, Explainer, Job, register_explainer
from explain.attribution.methods._masks import count, default_mask, perturbation_chunk

__all__ = ["FeatureAblation"]


@register_explainer("feature_ablation")
class FeatureAblation(Explainer):
    """Output drop when each group in ``feature_mask`` is set to the baseline.

    Default groups: image patches (~1/7 of a side, all channels), one time step of a
    sequence, one token, one tabular feature. Gradient-free: the fallback for models whose
    gradient is uninformative (non-differentiable steps, integer inputs without embedding).
    """

    gradient = False

    def evaluations(self, job: Job, options: dict) -> int:
        return 1 + count(options.get("feature_mask", default_mask(job)), job)

    def chunk_size(self, rows: int, job: Job, options: dict) -> int:
        return perturbation_chunk(rows)

    def _attribute(self, job: Job, chunk: Chunk, rows: int,
                   feature_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        mask = default_mask(job) if feature_mask is None else feature_mask.to(chunk.x.device)
        x = chunk.x
        values = attr.FeatureAblation(job.forward).attribute(
            x, baselines=chunk.baselines, target=chunk.target, feature_mask=mask,
            additional_forward_args=chunk.args or None,
            perturbations_per_eval=max(1, rows // x.shape[0]))
        return values.to(torch.float32) if not values.is_floating_point() else values, None
