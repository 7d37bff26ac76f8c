"""Saliency: the absolute gradient of the target logit (captum ``Saliency``)."""

from __future__ import annotations

import torch
from captum import attr

from explain.attribution.base import Chunk, Explainer, Job, register_explainer
from explain.attribution.methods._gradients import fast_gradients

__all__ = ["Saliency"]


@register_explainer("saliency")
class Saliency(Explainer):
    """``|d f_target / d x|`` (``abs=False`` keeps the sign).

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(3, 2).eval()
    >>> a = Saliency(model).explain(torch.ones(2, 3), target=1)
    >>> torch.allclose(a.values, model.weight[1].abs().detach().expand(2, 3))
    True
    """

    uses_baselines = False

    def _attribute(self, job: Job, chunk: Chunk, rows: int,
                   abs: bool = True) -> tuple[torch.Tensor, None]:
        values = fast_gradients(attr.Saliency(job.forward)).attribute(
            chunk.x, target=chunk.target, abs=bool(abs),
            additional_forward_args=chunk.args or None)
        return values, None
