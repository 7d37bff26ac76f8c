""":class:`~explain.monitor.TrainingMonitor` under ``torch.distributed`` (DDP, ``torchrun``).

What changes when a process group with more than one rank is initialized:

- **layers**: a model wrapped in ``DistributedDataParallel`` (or ``DataParallel``) is watched
  through its ``.module``, so layer names are the user's (``"0"``, not ``"module.0"``);
- **the same steps on every rank**: the automatic interval adapts to each rank's own clock, so
  ranks would sample different steps; under DDP ``every=None`` becomes the fixed interval
  :data:`DDP_EVERY` (capped by ``max_every``), and a given ``every`` is kept;
- **gradients after DDP's all-reduce**: the backward-time gradient taps (which would read a
  rank's local gradient before DDP averages it) are off; gradient norms are read at
  ``mon.step()``, after ``optimizer.step()``, i.e. of the averaged gradient (after any
  clipping);
- **one collective per sampled step**: the sampled step's values are already packed into one
  float32 vector for the host transfer; :func:`mean_over_ranks` all-reduces that vector (one
  ``all_reduce``, a sum divided by the world size) before it is read. Unsampled steps do no
  collective. Every rank then holds the same history; rank 0 writes it.

After the reduction: gradient, weight and update statistics are those of the (identical)
replicas; the loss and the activation mean and fractions are the means over the ranks' local
batches, i.e. over the global batch when the local batches have equal size; the activation
standard deviation and ``frac_dead`` are the mean of the ranks' values (approximations of the
global-batch values), and the between-record statistics the mean of the ranks' values.
"""

from __future__ import annotations

import torch
from torch import nn

from explain._core import distributed as dist

__all__ = ["DDP_EVERY", "unwrap", "active", "interval", "mean_over_ranks"]

#: The sampling interval under DDP when ``every=None`` (the same steps on every rank).
DDP_EVERY = 50


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` / ``DataParallel`` wrapper (else itself)."""
    wrappers = (nn.parallel.DistributedDataParallel, nn.DataParallel)
    while isinstance(model, wrappers):
        model = model.module
    return model


def active() -> bool:
    """``True`` when more than one rank takes part (the monitor then reduces its records)."""
    return dist.world_size() > 1


def interval(every: int | None, max_every: int) -> int | None:
    """The monitor's sampling interval: ``every``, or a fixed one under DDP."""
    if every is None and active():
        return max(1, min(DDP_EVERY, max_every))
    return every


def mean_over_ranks(packed: torch.Tensor) -> torch.Tensor:
    """``packed`` averaged over the ranks with one ``all_reduce`` (itself in one process)."""
    if not active():
        return packed
    backend = torch.distributed.get_backend()
    device = packed.device
    if backend == "nccl" and device.type != "cuda":
        work = packed.to(torch.device("cuda", torch.cuda.current_device()))
    elif backend == "gloo" and device.type not in ("cpu", "cuda"):
        work = packed.cpu()
    else:
        work = packed.clone()
    torch.distributed.all_reduce(work, op=torch.distributed.ReduceOp.SUM)
    return (work / dist.world_size()).to(device)
