"""shap's ``GradientExplainer`` (expected gradients) on the target logit."""

from __future__ import annotations

import warnings

import torch

from explain._validation import check_int
from explain.attribution.base import Chunk, Explainer, Job, register_explainer
from explain.attribution.methods._shap_common import Select, run_groups

__all__ = ["ShapGradient"]


@register_explainer("shap_gradient")
class ShapGradient(Explainer):
    """Expected gradients: gradients at random points between the input and background rows.

    Options: ``nsamples`` (64), ``background`` (``[N, *sample_shape]``; default: the
    baselines), ``seed`` (0). Token ids are explained in embedding space (a wrapper module
    feeds embeddings to the model), since shap's layer mode interpolates the layer's *input*.
    """

    def evaluations(self, job: Job, options: dict) -> int:
        return check_int(options.get("nsamples", 64), "nsamples", owner=self.name, min=1)

    def _attribute(self, job: Job, chunk: Chunk, rows: int, nsamples: int = 64,
                   background: torch.Tensor | None = None,
                   seed: int = 0) -> tuple[torch.Tensor, None]:
        import shap

        bg = chunk.baselines[:1] if background is None else background.to(chunk.x)

        def one(idx: torch.Tensor, cls: int, args: tuple):
            explainer = shap.GradientExplainer(Select(job.forward, cls, args), bg,
                                               batch_size=max(1, rows))
            return explainer.shap_values(chunk.x[idx], nsamples=nsamples, rseed=seed)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return run_groups(chunk, one, chunk.x), None
