"""shap's ``DeepExplainer`` (DeepLIFT-style SHAP), with a fallback to ``shap_gradient``."""

from __future__ import annotations

import warnings

import torch

from explain.attribution.base import Chunk, Explainer, Job, register_explainer
from explain.attribution.methods._shap_common import Select, run_groups

__all__ = ["ShapDeep"]


@register_explainer("shap_deep")
class ShapDeep(Explainer):
    """DeepSHAP against the ``background`` rows (default: the baselines).

    shap's rules cover a fixed list of layer types; preflight falls back to ``shap_gradient``
    for recurrent layers, attention, functional or reused non-linearities and token inputs.
    """

    rule_based = "shap_deep"
    fallback = "shap_gradient"

    def evaluations(self, job: Job, options: dict) -> int:
        bg = options.get("background")
        return 2 * (1 if bg is None else int(bg.shape[0]))

    def _attribute(self, job: Job, chunk: Chunk, rows: int,
                   background: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        import shap

        bg = chunk.baselines[:1] if background is None else background.to(chunk.x)

        def one(idx: torch.Tensor, cls: int, args: tuple):
            explainer = shap.DeepExplainer(Select(job.forward, cls, args), bg)
            return explainer.shap_values(chunk.x[idx], check_additivity=False)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return run_groups(chunk, one, chunk.x), None
