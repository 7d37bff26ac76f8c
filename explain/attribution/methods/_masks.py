"""Default perturbation groups for occlusion and feature ablation, per modality, and the
padding of sequences that noisy copies must keep (smoothgrad, gradient_shap)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from explain._core.tensors import valid_frames
from explain.attribution.base import Job

__all__ = ["default_window", "default_mask", "patch", "keep_padding", "perturbation_chunk"]


def patch(side: int) -> int:
    """Patch edge for an image side: about 7 patches across, at least 1 pixel."""
    return max(1, round(side / 7))


def default_window(job: Job) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(sliding_window_shapes, strides) for one sample of ``job.x``."""
    shape = tuple(job.x.shape[1:])
    if job.token_ids is not None:                       # [tokens, dim]: one token at a time
        return (1, shape[1]), (1, shape[1])
    if len(shape) == 3:                                 # [C, H, W]: k x k patches, half stride
        k = patch(min(shape[1:]))
        return (shape[0], k, k), (shape[0], max(1, k // 2), max(1, k // 2))
    if len(shape) == 2:                                 # [T, F]: a few frames at a time
        k = max(1, shape[0] // 10)
        return (k, shape[1]), (k, shape[1])
    return (1,) * len(shape), (1,) * len(shape)


def default_mask(job: Job) -> torch.Tensor | None:
    """A ``[1, *sample_shape]`` feature mask, or ``None`` (every element on its own)."""
    shape = tuple(job.x.shape[1:])
    dev = job.x.device
    if job.token_ids is not None:                       # group the embedding dims of a token
        return torch.arange(shape[0], device=dev)[:, None].expand(shape).unsqueeze(0)
    if len(shape) == 3:                                 # square patches shared by channels
        k = patch(min(shape[1:]))
        rows = torch.arange(shape[1], device=dev) // k
        cols = torch.arange(shape[2], device=dev) // k
        grid = rows[:, None] * (int(cols.max()) + 1) + cols[None, :]
        return grid.expand(shape).unsqueeze(0).contiguous()
    if len(shape) == 2:                                 # one group per time step
        return torch.arange(shape[0], device=dev)[:, None].expand(shape).unsqueeze(0)
    return None


def perturbation_chunk(rows: int) -> int:
    """Samples per chunk of a perturbation method (occlusion, feature ablation): ``rows``.

    captum runs a chunk as one unperturbed forward of the chunk, then ``perturbations_per_eval``
    perturbations of every sample per pass; ``perturbations_per_eval = rows // chunk`` makes each
    pass about ``rows`` rows. Chunks of ``rows // evaluations`` samples (the default) also give
    passes of about ``rows`` rows, but each chunk adds an unperturbed pass of a few rows (the
    zoo transformer at 256 rows: 13 chunks of 5 samples, 13 five-row passes), where a chunk of
    up to ``rows`` samples runs that pass once, at full size.

    Examples
    --------
    >>> perturbation_chunk(256)
    256
    """
    return max(1, int(rows))


def count(mask: torch.Tensor | None, job: Job) -> int:
    """Number of feature groups a mask defines."""
    return int(mask.max()) + 1 if mask is not None else int(job.x[0].numel())


def keep_padding(job: Job, x: torch.Tensor) -> Callable[..., torch.Tensor]:
    """``job.forward``, or for padded sequences a forward that zeroes noisy copies' padding.

    Padded sequences are ``[batch, time, features]`` with all-zero trailing frames (a packed RNN
    reads each length from them). Noise on those frames would make every copy a full-length
    sequence: the model would explain frames that are not there, at the cost of full-length
    passes. captum's NoiseTunnel repeats each sample ``k`` times in a row
    (``repeat_interleave``), so the returned forward multiplies copy ``j`` by the valid-frame
    mask of sample ``j // k``; the gradient on padding is then exactly 0.
    """
    if job.modality not in ("sequence", "audio") or x.dim() != 3 or job.token_ids is not None:
        return job.forward
    valid = valid_frames(x).to(x.dtype)[..., None]                     # [chunk, time, 1]
    if bool(valid.all()):
        return job.forward

    def forward(noisy: torch.Tensor, *args: Any) -> torch.Tensor:
        k = noisy.shape[0] // valid.shape[0]
        return job.forward(noisy * valid.repeat_interleave(k, dim=0), *args)

    return forward
