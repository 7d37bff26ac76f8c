"""Default perturbation groups for occlusion and feature ablation, per modality, and the
padding of sequences that noisy copies must keep (smoothgrad, gradient_shap)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from explain._core.tensors import valid_frames
from explain.attribution.base import Job

__all__ = ["default_window", "default_mask", "patch", "keep_padding", "Padding",
           "perturbation_chunk"]


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


class Padding(NamedTuple):
    """What :func:`keep_padding` hands a noisy method for one chunk."""

    forward: Callable[..., torch.Tensor]  # forward(copies, *args)
    args: tuple                           # the chunk's args, led by the valid-frame mask if any
    lengths: list[int] | None             # valid frames per sample of padded sequences


def keep_padding(job: Job, x: torch.Tensor, args: tuple) -> Padding:
    """``job.forward`` and ``args``, or for padded sequences a forward that zeroes the padding
    of noisy or interpolated copies.

    Padded sequences are ``[batch, time, features]`` with all-zero trailing frames (a packed RNN
    reads each length from them). Noise on those frames would make every copy a full-length
    sequence: the model would explain frames that are not there, at the cost of full-length
    passes. The returned forward takes the valid-frame mask ``[rows, time, 1]`` as its first
    extra argument (so it is repeated and sliced with the copies like any per-sample argument)
    and multiplies each copy by it; the gradient on padding is then exactly 0. ``lengths``
    tells the noise draw which frames are the sequence's own.

    Examples
    --------
    >>> x = torch.zeros(2, 3, 1)
    >>> x[0, :2], x[1, :1] = 1.0, 2.0
    >>> job = Job(model=None, card=None, modality="sequence", inputs=x, x=x, baselines=x,
    ...           args=(), forward=lambda z: z.sum((1, 2))[:, None], target=torch.zeros(2))
    >>> kept = keep_padding(job, x, ())
    >>> kept.lengths, kept.forward(torch.ones(2, 3, 1), *kept.args).tolist()
    ([2, 1], [[2.0], [1.0]])
    """
    if job.modality not in ("sequence", "audio") or x.dim() != 3 or job.token_ids is not None:
        return Padding(job.forward, args, None)
    valid = valid_frames(x)                                           # [chunk, time]
    if bool(valid.all()):
        return Padding(job.forward, args, None)

    def forward(copies: torch.Tensor, mask: torch.Tensor, *rest: Any) -> torch.Tensor:
        return job.forward(copies * mask, *rest)

    return Padding(forward, (valid.to(x.dtype)[..., None], *args), valid.sum(1).tolist())
