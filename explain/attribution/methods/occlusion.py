"""Occlusion: slide a baseline-valued window over the input (captum ``Occlusion``)."""

from __future__ import annotations

import math

import torch
from captum import attr

from explain.attribution.base import Chunk, Explainer, Job, register_explainer
from explain.attribution.methods._masks import default_window, perturbation_chunk

__all__ = ["Occlusion"]


@register_explainer("occlusion")
class Occlusion(Explainer):
    """Output drop when a window is replaced by the baseline, spread over the window.

    Options: ``sliding_window_shapes`` and ``strides`` (per-sample shapes). Defaults: images
    ~1/7-side patches with half stride; sequences a tenth of the frames; text one token;
    tabular one feature. Gradient-free, so it also serves as the fallback of last resort.
    """

    gradient = False

    def _windows(self, job: Job, options: dict) -> tuple[tuple, tuple]:
        win, stride = default_window(job)
        return (tuple(options.get("sliding_window_shapes", win)),
                tuple(options.get("strides", stride)))

    def evaluations(self, job: Job, options: dict) -> int:
        win, stride = self._windows(job, options)
        shape = job.x.shape[1:]
        return 1 + math.prod((s - w) // st + 1 for s, w, st in zip(shape, win, stride))

    def chunk_size(self, rows: int, job: Job, options: dict) -> int:
        return perturbation_chunk(rows)

    def _attribute(self, job: Job, chunk: Chunk, rows: int, sliding_window_shapes=None,
                   strides=None) -> tuple[torch.Tensor, None]:
        opts = {k: v for k, v in (("sliding_window_shapes", sliding_window_shapes),
                                  ("strides", strides)) if v is not None}
        win, stride = self._windows(job, opts)
        values = attr.Occlusion(job.forward).attribute(
            chunk.x, sliding_window_shapes=win, strides=stride, baselines=chunk.baselines,
            target=chunk.target, additional_forward_args=chunk.args or None,
            perturbations_per_eval=max(1, rows // chunk.x.shape[0]))
        return values, None
