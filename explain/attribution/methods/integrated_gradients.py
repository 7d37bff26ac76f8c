"""Integrated gradients (captum ``IntegratedGradients``) with auto-tuned internal batching."""

from __future__ import annotations

import torch
from captum import attr

from explain._validation import check_choice, check_int
from explain.attribution.base import Chunk, Explainer, Job, register_explainer
from explain.attribution.methods._gradients import fast_gradients

__all__ = ["IntegratedGradients"]


@register_explainer("integrated_gradients")
class IntegratedGradients(Explainer):
    """Path integral of gradients from the baseline to the input; ``sum(values) ~ f(x) - f(b)``.

    Options: ``n_steps`` (50), ``method`` (``"gausslegendre"``, or ``"riemann_trapezoid"``...).
    ``convergence_delta`` is captum's completeness error per sample.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(3, 2).eval()
    >>> a = IntegratedGradients(model).explain(torch.ones(1, 3), target=0, n_steps=8)
    >>> torch.allclose(a.values, model.weight[0:1].detach(), atol=1e-5)
    True
    """

    has_delta = True

    def evaluations(self, job: Job, options: dict) -> int:
        return check_int(options.get("n_steps", 50), "n_steps", owner=self.name, min=1)

    def chunk_size(self, rows: int, job: Job, options: dict) -> int:
        # captum splits the steps: a chunk of c samples runs rows // c steps per pass
        c = max(1, rows)
        while c > job.x.shape[0] and c > 1:
            c //= 2
        return c

    def _attribute(self, job: Job, chunk: Chunk, rows: int, n_steps: int = 50,
                   method: str = "gausslegendre") -> tuple[torch.Tensor, torch.Tensor]:
        check_choice(method, "method", ["gausslegendre", "riemann_trapezoid", "riemann_left",
                                        "riemann_right", "riemann_middle"], owner=self.name)
        ig = fast_gradients(attr.IntegratedGradients(job.forward))
        values, delta = ig.attribute(
            chunk.x, baselines=chunk.baselines, target=chunk.target,
            additional_forward_args=chunk.args or None, n_steps=n_steps, method=method,
            internal_batch_size=max(rows, chunk.x.shape[0]), return_convergence_delta=True)
        return values, delta
