"""Default perturbation groups for occlusion and feature ablation, per modality."""

from __future__ import annotations

import torch

from explain.attribution.base import Job

__all__ = ["default_window", "default_mask", "patch"]


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


def count(mask: torch.Tensor | None, job: Job) -> int:
    """Number of feature groups a mask defines."""
    return int(mask.max()) + 1 if mask is not None else int(job.x[0].numel())
