"""The BPTT curve of a sequence model: the norm of d loss / d input at each time step.

It is computed from a separate forward/backward pass on a small slice of the training batch, so
the user's parameter gradients, the model's train/eval mode, its buffers (BatchNorm statistics)
and the random number generators (dropout) are all left exactly as they were.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from explain.monitor._layers import first_tensor

__all__ = ["temporal_curve", "is_sequence_input"]


def is_sequence_input(x: object) -> bool:
    """A batch of sequences: a float tensor ``[batch, time, features]``."""
    return isinstance(x, torch.Tensor) and x.is_floating_point() and x.dim() == 3


def temporal_curve(model: nn.Module, x: torch.Tensor, target: torch.Tensor | None = None,
                   samples: int = 32) -> torch.Tensor | None:
    """Mean over samples of ``||d loss_i / d x[i, t, :]||`` for each time step ``t``.

    The mean at ``t`` is over the sequences for which ``t`` is not padding (trailing all-zero
    frames are padding); it is 0 where every sequence is padded.

    Parameters
    ----------
    model : the classifier; it must return logits ``[batch, classes]``.
    x : the input batch ``[batch, time, features]``; only the first ``samples`` rows are used.
    target : the true labels ``[batch]``; without them the model's own predictions are used.
    samples : how many sequences to use.

    Returns
    -------
    A tensor ``[time]`` on the input's device (not synchronised), or None if the model's output
    is not ``[batch, classes]`` logits.
    """
    n = min(samples, x.shape[0])
    xs = x[:n].detach().clone().requires_grad_(True)      # [n, time, features]
    saved = [b.detach().clone() for b in model.buffers()]
    devices = [xs.device.index or 0] if xs.is_cuda else []
    cudnn = torch.backends.cudnn.flags(enabled=False) if xs.is_cuda else contextlib.nullcontext()
    try:
        with torch.random.fork_rng(devices=devices), torch.enable_grad(), cudnn:
            out = first_tensor(model(xs))
            if out is None or out.dim() != 2 or out.shape[0] != n:
                return None
            if target is not None and isinstance(target, torch.Tensor) and target.dim() == 1 \
                    and target.shape[0] >= n and not target.is_floating_point():
                y = target[:n].to(out.device)
            else:
                y = out.detach().argmax(dim=1)
            loss = F.cross_entropy(out.float(), y, reduction="sum")
            (grad,) = torch.autograd.grad(loss, xs)       # [n, time, features]
    finally:
        with torch.no_grad():
            for buffer, old in zip(model.buffers(), saved):
                buffer.copy_(old)
    norms = grad.detach().float().norm(dim=2)             # [n, time]
    valid = _valid_frames(xs.detach())                    # [n, time]
    return (norms * valid).sum(0) / valid.sum(0).clamp(min=1)  # [time]


def _valid_frames(x: torch.Tensor) -> torch.Tensor:
    """1.0 where a frame is not padding: trailing all-zero frames are padding."""
    nonzero = (x != 0).any(dim=2).float()                 # [n, time]
    return nonzero.flip(1).cummax(dim=1).values.flip(1)   # any non-zero frame at or after t
