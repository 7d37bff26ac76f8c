"""DeepLIFT (captum ``DeepLift``), with a preflight fallback to integrated gradients."""

from __future__ import annotations

import torch
from captum import attr

from explain.attribution.base import Chunk, Explainer, Job, register_explainer
from explain.attribution.methods._gradients import fast_gradients

__all__ = ["DeepLift"]


@register_explainer("deeplift")
class DeepLift(Explainer):
    """Rescale-rule attributions relative to the baseline; ``sum(values) = f(x) - f(b)``.

    The rules hold only for models built from linear layers and activation *modules* used
    once. Preflight finds reused modules, functional non-linearities, products of activations
    (attention, gates) and recurrent layers, and then falls back to integrated gradients with
    a warning rather than return silently wrong values.
    """

    rule_based = "deeplift"
    fallback = "integrated_gradients"
    has_delta = True

    def evaluations(self, job: Job, options: dict) -> int:
        return 2  # input and baseline run together

    def _attribute(self, job: Job, chunk: Chunk, rows: int,
                   eps: float = 1e-10) -> tuple[torch.Tensor, torch.Tensor]:
        values, delta = fast_gradients(attr.DeepLift(job.forward, eps=eps)).attribute(
            chunk.x, baselines=chunk.baselines, target=chunk.target,
            additional_forward_args=chunk.args or None, return_convergence_delta=True)
        return values, delta
