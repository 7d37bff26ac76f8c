"""SmoothGrad: saliency averaged over noisy copies of the input (captum ``NoiseTunnel``)."""

from __future__ import annotations

import torch
from captum import attr

from explain._validation import check_float, check_int
from explain.attribution.base import Chunk, Explainer, Job, register_explainer
from explain.attribution.methods._gradients import fast_gradients, seeded
from explain.attribution.methods._masks import keep_padding

__all__ = ["SmoothGrad"]


@register_explainer("smoothgrad")
class SmoothGrad(Explainer):
    """Mean saliency over ``nt_samples`` (16) copies with Gaussian noise of standard deviation
    ``stdev_spread`` (0.15) times the chunk's value range; ``seed`` (0) fixes the noise.

    Padded sequences (``[batch, time, features]`` with all-zero trailing frames) keep their
    padding: the noise on those frames is zeroed before the model sees it, so each copy keeps
    its sequence's length and padding frames get exactly 0 (as with saliency)."""

    uses_baselines = False

    def evaluations(self, job: Job, options: dict) -> int:
        return check_int(options.get("nt_samples", 16), "nt_samples", owner=self.name, min=1)

    def _attribute(self, job: Job, chunk: Chunk, rows: int, nt_samples: int = 16,
                   stdev_spread: float = 0.15, seed: int = 0) -> tuple[torch.Tensor, None]:
        spread = float(check_float(stdev_spread, "stdev_spread", owner=self.name, min=0.0) or 0)
        stdev = spread * float(chunk.x.max() - chunk.x.min()) or spread
        per_pass = max(1, rows // chunk.x.shape[0])
        forward = keep_padding(job, chunk.x)
        with seeded(check_int(seed, "seed", owner=self.name, min=0), chunk.x.device):
            values = fast_gradients(attr.NoiseTunnel(attr.Saliency(forward))).attribute(
                chunk.x, nt_type="smoothgrad", nt_samples=nt_samples, stdevs=stdev,
                nt_samples_batch_size=min(per_pass, nt_samples), target=chunk.target,
                additional_forward_args=chunk.args or None)
        return values, None
