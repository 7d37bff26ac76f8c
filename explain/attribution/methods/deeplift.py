"""DeepLIFT (captum ``DeepLift``), with a preflight fallback to integrated gradients."""

from __future__ import annotations

import functools

import torch
from captum import attr

from explain.attribution.base import Chunk, Explainer, Job, register_explainer
from explain.attribution.methods._gradients import summed_gradients

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
        # captum's convergence delta would run the model again on inputs and baselines; the
        # rule pass already computed both target logits (inputs first, then baselines), so the
        # delta sum(values) - (f(x) - f(b)) comes from that pass.
        logits: list[torch.Tensor] = []
        dl = attr.DeepLift(job.forward, eps=eps)
        dl.gradient_func = functools.partial(summed_gradients, keep=logits)
        values = dl.attribute(chunk.x, baselines=chunk.baselines, target=chunk.target,
                              additional_forward_args=chunk.args or None)
        n = chunk.x.shape[0]
        out = logits[-1].reshape(-1)
        delta = values.detach().flatten(1).sum(1) - (out[:n] - out[n:])
        return values, delta
