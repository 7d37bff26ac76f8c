"""Grad-CAM on the last convolution, upsampled to the input (captum ``LayerGradCam``)."""

from __future__ import annotations

import torch
from captum import attr
from torch import nn

from explain.attribution import preflight as pf
from explain.attribution.base import Chunk, Explainer, Job, register_explainer

__all__ = ["GradCam"]


@register_explainer("grad_cam")
class GradCam(Explainer):
    """Class activation map of the card's ``"grad_cam"`` layer (else the last ``nn.Conv2d``),
    ReLU'd (``relu_attributions=True``), bilinearly upsampled to H x W and repeated over the
    channels so ``values`` has the input's shape. Images only."""

    uses_baselines = False

    def _layer(self, job: Job) -> nn.Module | None:
        found = pf.find_layer(job.model, job.card, "grad_cam", nn.Conv2d, pick="last")
        return None if found is None else found[1]

    def unsupported(self, job: Job) -> str | None:
        if job.x.dim() != 4 or job.token_ids is not None:
            return "Grad-CAM needs image inputs [batch, C, H, W]"
        if self._layer(job) is None:
            return "no nn.Conv2d layer found and the card names no 'grad_cam' layer"
        return None

    def _attribute(self, job: Job, chunk: Chunk, rows: int,
                   relu_attributions: bool = True) -> tuple[torch.Tensor, None]:
        cam = attr.LayerGradCam(job.forward, self._layer(job)).attribute(
            chunk.x, target=chunk.target, additional_forward_args=chunk.args or None,
            relu_attributions=bool(relu_attributions))                   # [batch, 1, h, w]
        up = attr.LayerAttribution.interpolate(cam, tuple(chunk.x.shape[2:]),
                                               interpolate_mode="bilinear")
        return up.expand_as(chunk.x).contiguous(), None
