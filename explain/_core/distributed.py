"""``torch.distributed`` helpers shared by the audit, the monitor and the zoo trainer.

Every helper is a no-op (or the single-process answer) when ``torch.distributed`` is not
available or no process group is initialized, so the callers read the same in one process and
under ``torchrun``: :func:`world_size` is 1, :func:`rank` is 0, :func:`gather_objects` returns
``[obj]``, :func:`all_gather_objects` returns ``[obj]``.

Shards are contiguous and ordered by rank (:func:`shard`), so concatenating the gathered
shards in rank order gives back the single-process order.
"""

from __future__ import annotations

import os
from typing import Any, TypeVar

import torch

__all__ = ["is_distributed", "rank", "world_size", "is_main", "shard", "gather_objects",
           "all_gather_objects", "broadcast_object", "barrier", "init_from_env", "backend_for",
           "destroy"]

T = TypeVar("T")


def is_distributed() -> bool:
    """``True`` when a process group is initialized (with more than one process or not)."""
    dist = torch.distributed
    return bool(dist.is_available() and dist.is_initialized())


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return int(torch.distributed.get_rank()) if is_distributed() else 0


def world_size() -> int:
    """The number of processes (1 without a process group)."""
    return int(torch.distributed.get_world_size()) if is_distributed() else 1


def is_main() -> bool:
    """``True`` on rank 0, the one process that prints and writes."""
    return rank() == 0


def shard(n: int, rank_: int | None = None, world: int | None = None) -> range:
    """The contiguous slice of ``range(n)`` that ``rank_`` handles (sizes differ by at most 1).

    Examples
    --------
    >>> [list(shard(5, r, 2)) for r in range(2)]
    [[0, 1, 2], [3, 4]]
    >>> list(shard(1, 1, 2))
    []
    """
    r = rank() if rank_ is None else rank_
    w = world_size() if world is None else world
    base, extra = divmod(n, w)
    start = r * base + min(r, extra)
    return range(start, start + base + (1 if r < extra else 0))


def gather_objects(obj: T, dst: int = 0) -> list[T] | None:
    """Every rank's ``obj`` on ``dst``, in rank order (``None`` on the other ranks).

    Pickled over the process group (``gather_object``): meant for small typed values.
    """
    if world_size() == 1:
        return [obj]
    out: list[Any] | None = [None] * world_size() if rank() == dst else None
    torch.distributed.gather_object(obj, out, dst=dst)
    return out


def all_gather_objects(obj: T) -> list[T]:
    """Every rank's ``obj`` on every rank, in rank order."""
    if world_size() == 1:
        return [obj]
    out: list[Any] = [None] * world_size()
    torch.distributed.all_gather_object(out, obj)
    return out


def broadcast_object(obj: T, src: int = 0) -> T:
    """``src``'s ``obj`` on every rank."""
    if world_size() == 1:
        return obj
    box: list[Any] = [obj]
    torch.distributed.broadcast_object_list(box, src=src)
    return box[0]


def barrier() -> None:
    """Wait for every rank (no-op in one process)."""
    if world_size() > 1:
        torch.distributed.barrier()


def backend_for(device: torch.device | str | None = None) -> str:
    """``"nccl"`` for CUDA devices (when built with NCCL), else ``"gloo"``."""
    dev = torch.device(device) if device is not None else None
    cuda = (dev.type == "cuda") if dev is not None else torch.cuda.is_available()
    if cuda and torch.distributed.is_nccl_available():
        return "nccl"
    return "gloo"


def init_from_env(device: torch.device | str | None = None) -> bool:
    """Join the process group that ``torchrun`` describes in the environment.

    Returns ``True`` when this call initialized the group (the caller then calls
    :func:`destroy`), ``False`` when not launched by torchrun (no ``WORLD_SIZE``) or when a
    group already exists. On CUDA each process uses device ``LOCAL_RANK``.
    """
    if is_distributed() or "WORLD_SIZE" not in os.environ or not torch.distributed.is_available():
        return False
    backend = backend_for(device)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    torch.distributed.init_process_group(backend=backend)
    return True


def destroy() -> None:
    """Leave the process group (no-op without one)."""
    if is_distributed():
        torch.distributed.destroy_process_group()
