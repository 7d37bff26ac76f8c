"""shap's model-agnostic ``KernelExplainer``, for text (per token) and tabular inputs."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from explain._validation import check_int
from explain.attribution.base import Chunk, Explainer, Job, register_explainer
from explain.attribution.methods._shap_common import run_groups

__all__ = ["ShapKernel"]

_MAX_FEATURES = 128


@register_explainer("shap_kernel")
class ShapKernel(Explainer):
    """Kernel SHAP: a weighted linear fit over coalitions of features.

    Features are tokens (a masked token becomes the padding id, ``job.pad_id``) or tabular
    columns; at most 128 per sample. Options: ``nsamples`` (256), ``background``.
    """

    gradient = False

    def unsupported(self, job: Job) -> str | None:
        n = job.token_ids.shape[1] if job.token_ids is not None else job.x[0].numel()
        if n > _MAX_FEATURES:
            return (f"Kernel SHAP fits one weight per feature and this input has {n} "
                    f"(at most {_MAX_FEATURES}); use 'shap_gradient' or 'feature_ablation'")
        return None

    def evaluations(self, job: Job, options: dict) -> int:
        return check_int(options.get("nsamples", 256), "nsamples", owner=self.name, min=1)

    def chunk_size(self, rows: int, job: Job, options: dict) -> int:
        return job.x.shape[0]   # shap batches internally; one call per target group

    def _attribute(self, job: Job, chunk: Chunk, rows: int, nsamples: int = 256,
                   background: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        import shap

        text = job.token_ids is not None
        # In text jobs args[0] are the token ids: Kernel SHAP masks ids, not embeddings.
        feats = chunk.args[0] if text else chunk.x
        extra = chunk.args[1:] if text else chunk.args
        base = torch.full_like(feats[:1], job.pad_id) if text else chunk.baselines[:1]
        bg = base if background is None else background.to(feats)
        if text and background is None and not _runs(job.model, bg, extra):
            bg = torch.ones_like(bg)   # the model cannot take an all-padding text
            job.warnings.append("shap_kernel: the model fails on an all-padding text, so "
                                f"masked tokens became the id 1 instead of padding {job.pad_id}")
        shape = feats.shape[1:]

        def one(idx: torch.Tensor, cls: int, args: tuple):
            def f(z: np.ndarray) -> np.ndarray:
                t = torch.as_tensor(z, device=feats.device).to(feats.dtype).reshape(-1, *shape)
                a = tuple(x.expand(t.shape[0], *x.shape[1:]) if isinstance(x, torch.Tensor)
                          and x.dim() > 0 and x.shape[0] == 1 else x for x in args)
                with torch.no_grad():
                    return job.model(t, *a)[:, cls].double().cpu().numpy()
            explainer = shap.KernelExplainer(f, bg.reshape(bg.shape[0], -1).cpu().numpy())
            x = feats[idx].reshape(len(idx), -1).cpu().numpy()
            return explainer.shap_values(x, nsamples=nsamples, silent=True)

        sub = Chunk(feats, chunk.baselines, chunk.target, tuple(extra))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vals = run_groups(sub, one, feats.to(torch.float32))
        # text: one value per token; base sums the last dim, so give it a dim of size 1
        return (vals.unsqueeze(-1) if text else vals), None


def _runs(model: torch.nn.Module, ids: torch.Tensor, args: tuple) -> bool:
    """Whether ``model`` accepts ``ids`` (one row) with the first row of ``args``."""
    a = tuple(x[:1] if isinstance(x, torch.Tensor) and x.dim() > 0 else x for x in args)
    try:
        with torch.no_grad():
            return bool(torch.isfinite(model(ids, *a)).all())
    except (RuntimeError, ValueError, IndexError):
        return False
