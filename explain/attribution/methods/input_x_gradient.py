"""Input times gradient (captum ``InputXGradient``)."""

from __future__ import annotations

import torch
from captum import attr

from explain.attribution.base import Chunk, Explainer, Job, register_explainer
from explain.attribution.methods._gradients import fast_gradients

__all__ = ["InputXGradient"]


@register_explainer("input_x_gradient")
class InputXGradient(Explainer):
    """``x * d f_target / d x`` (exact for linear models with a zero baseline).

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(3, 2).eval()
    >>> x = torch.tensor([[1.0, 2.0, 3.0]])
    >>> a = InputXGradient(model).explain(x, target=0)
    >>> torch.allclose(a.values, x * model.weight[0].detach())
    True
    """

    uses_baselines = False

    def _attribute(self, job: Job, chunk: Chunk, rows: int) -> tuple[torch.Tensor, None]:
        values = fast_gradients(attr.InputXGradient(job.forward)).attribute(
            chunk.x, target=chunk.target, additional_forward_args=chunk.args or None)
        return values, None
