"""GradientSHAP: expected gradients between each sample and its baseline, with input noise.

captum's ``GradientShap`` draws each noisy copy's baseline at random from the rows of
``baselines`` (a baseline *distribution*). Here ``baselines`` is broadcast to the inputs, one
baseline per sample, so drawing across rows would pair a sample with another sample's baseline:
the result would depend on which samples share a chunk, and a padded sequence would be
interpolated towards a longer sequence's baseline (a packed RNN then runs, and attributes,
frames that are padding). The same captum pieces ``GradientShap`` is built from
(``NoiseTunnel`` over ``InputBaselineXGradient``) run with each sample's own baseline.
"""

from __future__ import annotations

import torch
from captum import attr
from captum.attr._core.gradient_shap import InputBaselineXGradient

from explain._validation import check_float, check_int
from explain.attribution.base import Chunk, Explainer, Job, register_explainer
from explain.attribution.methods._gradients import fast_gradients, seeded
from explain.attribution.methods._masks import keep_padding

__all__ = ["GradientShap"]


@register_explainer("gradient_shap")
class GradientShap(Explainer):
    """SHAP values approximated by gradients at random points between baseline and input.

    Options: ``n_samples`` (16), ``stdevs`` (0.0, Gaussian noise on the input), ``seed`` (0,
    fixes the noise and the interpolation points). Each sample is interpolated towards its own
    baseline (the job's baselines, zeros by default). Padded sequences keep their padding: no
    noise on trailing all-zero frames, which get exactly 0.
    """

    def evaluations(self, job: Job, options: dict) -> int:
        return check_int(options.get("n_samples", 16), "n_samples", owner=self.name, min=1)

    def _attribute(self, job: Job, chunk: Chunk, rows: int, n_samples: int = 16,
                   stdevs: float = 0.0, seed: int = 0) -> tuple[torch.Tensor, None]:
        check_float(stdevs, "stdevs", owner=self.name, min=0.0)
        forward = keep_padding(job, chunk.x)
        method = fast_gradients(attr.NoiseTunnel(InputBaselineXGradient(forward)))
        with seeded(check_int(seed, "seed", owner=self.name, min=0), chunk.x.device):
            values = method.attribute(
                chunk.x, nt_type="smoothgrad", nt_samples=n_samples, stdevs=float(stdevs),
                draw_baseline_from_distrib=False, baselines=chunk.baselines,
                target=chunk.target, additional_forward_args=chunk.args or None)
        return values, None
