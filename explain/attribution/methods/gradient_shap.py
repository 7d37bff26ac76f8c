"""GradientSHAP (captum ``GradientShap``): expected gradients over baselines and noise."""

from __future__ import annotations

import torch
from captum import attr

from explain._validation import check_float, check_int
from explain.attribution.base import Chunk, Explainer, Job, register_explainer
from explain.attribution.methods._gradients import fast_gradients

__all__ = ["GradientShap"]


@register_explainer("gradient_shap")
class GradientShap(Explainer):
    """SHAP values approximated by gradients at random points between baseline and input.

    Options: ``n_samples`` (16), ``stdevs`` (0.0, Gaussian noise on the input), ``seed`` (0).
    The baseline distribution is the job's baselines (zeros by default).
    """

    def evaluations(self, job: Job, options: dict) -> int:
        return check_int(options.get("n_samples", 16), "n_samples", owner=self.name, min=1)

    def _attribute(self, job: Job, chunk: Chunk, rows: int, n_samples: int = 16,
                   stdevs: float = 0.0, seed: int = 0) -> tuple[torch.Tensor, None]:
        check_float(stdevs, "stdevs", owner=self.name, min=0.0)
        with torch.random.fork_rng(devices=[chunk.x.device] if chunk.x.is_cuda else []):
            torch.manual_seed(check_int(seed, "seed", owner=self.name, min=0))
            values = fast_gradients(attr.GradientShap(job.forward)).attribute(
                chunk.x, baselines=chunk.baselines, target=chunk.target,
                additional_forward_args=chunk.args or None, n_samples=n_samples,
                stdevs=float(stdevs))
        return values, None
