"""Zoo training under ``torch.distributed`` (DistributedDataParallel, launched by ``torchrun``).

:func:`zoo.train` calls these helpers at a few points; each is the single-process code path
when no process group with more than one rank is initialized, so one process trains exactly as
before. Under ``torchrun --nproc_per_node N -m deepscope train PRESET`` (or
``deepscope train PRESET --nproc N``):

- **data**: a :class:`~torch.utils.data.DistributedSampler` per epoch, seeded with the run's
  seed and ``set_epoch(epoch)``, so each epoch's order depends only on (seed, epoch) (resume is
  exact) and each rank gets a disjoint ``1/N`` of it (the sampler pads with repeated samples so
  every rank takes the same number of steps).
- **global batch**: ``batch_size`` is the batch *per rank*; one optimizer step sees
  ``batch_size x N`` samples (the global batch). Steps per epoch (and so the learning-rate
  schedule) are counted per rank.
- **gradients**: the forward pass goes through a ``DistributedDataParallel`` wrapper of the
  model (:func:`ddp`), which averages the gradients over the ranks in backward.
- **metrics**: the training loss and accuracy sums are all-reduced (:func:`sum_over_ranks`);
  validation and test logits are computed on contiguous shards and gathered in order
  (:func:`predict`), so every rank has the metrics of the whole split.
- **writes**: only rank 0 shows progress and writes the run folder (:func:`is_main`); the
  folder has the same format as a single-process run.

Backend: gloo on CPU, NCCL on CUDA (:func:`explain._core.distributed.backend_for`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from explain._core import distributed as dist
from zoo import _loop

__all__ = ["active", "is_main", "batches", "steps_per_epoch", "ddp", "release",
           "sum_over_ranks", "predict"]

_WRAPPED: dict[int, nn.parallel.DistributedDataParallel] = {}


def active() -> bool:
    """``True`` when more than one rank trains."""
    return dist.world_size() > 1


def is_main() -> bool:
    """``True`` on the rank that shows progress and writes (rank 0; always in one process)."""
    return dist.is_main()


def sampler(dataset: Dataset, *, seed: int, epoch: int) -> DistributedSampler:
    """This rank's shuffled share of ``dataset`` for ``epoch`` (seeded by ``seed``)."""
    s: DistributedSampler = DistributedSampler(dataset, num_replicas=dist.world_size(),
                                               rank=dist.rank(), shuffle=True, seed=seed)
    s.set_epoch(epoch)
    return s


def batches(dataset: Dataset, batch_size: int, device: torch.device, *, seed: int = 0,
            epoch: int = 0, num_workers: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The training batches of this rank (``batch_size`` per rank) for ``epoch``."""
    if not active():
        yield from _loop.batches(dataset, batch_size, device, seed=seed, epoch=epoch,
                                 num_workers=num_workers)
        return
    order = torch.as_tensor(list(sampler(dataset, seed=seed, epoch=epoch)), dtype=torch.long)
    tensors = getattr(dataset, "tensors", None)
    if tensors is not None:  # in-memory: index tensors directly
        x, y = tensors
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            yield x[idx].to(device, non_blocking=True), y[idx].to(device, non_blocking=True)
        return
    loader = DataLoader(dataset, batch_size=batch_size, sampler=order.tolist(),
                        num_workers=num_workers, pin_memory=device.type == "cuda")
    for xb, yb in loader:
        yield xb.to(device, non_blocking=True), torch.as_tensor(yb).to(device, non_blocking=True)


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Optimizer steps per epoch on each rank (the sampler gives each ``ceil(n / N)`` samples)."""
    per_rank = -(-n_train // dist.world_size())
    return -(-per_rank // batch_size)


def ddp(net: nn.Module) -> nn.Module:
    """``net`` for the training forward pass: its DDP wrapper under DDP (made once), else itself.

    Evaluation calls ``net`` itself (no collective in forward, shards may differ in length).
    """
    if not active():
        return net
    wrapper = _WRAPPED.get(id(net))
    if wrapper is None or wrapper.module is not net:
        on_cuda = next(net.parameters()).is_cuda
        ids = [torch.cuda.current_device()] if on_cuda else None
        wrapper = nn.parallel.DistributedDataParallel(net, device_ids=ids)
        _WRAPPED[id(net)] = wrapper
    return wrapper


def release(net: nn.Module) -> None:
    """Drop the DDP wrapper of ``net`` (the trained model is then a plain module again)."""
    _WRAPPED.pop(id(net), None)


def sum_over_ranks(*values: torch.Tensor | int) -> tuple[Any, ...]:
    """The sums over the ranks of ``values`` (0-d tensors or ints), with one all-reduce."""
    if not active():
        return values
    dev = next((v.device for v in values if isinstance(v, torch.Tensor)), torch.device("cpu"))
    if dist.backend_for(dev) == "gloo":
        dev = torch.device("cpu")
    packed = torch.stack([torch.as_tensor(v, dtype=torch.float64).to(dev).reshape(())
                          for v in values])
    torch.distributed.all_reduce(packed)
    out = []
    for v, total in zip(values, packed.cpu()):
        if isinstance(v, torch.Tensor):
            out.append(total.to(v.dtype).to(v.device))
        else:
            out.append(int(round(float(total))))
    return tuple(out)


def _slice(dataset: Dataset, part: range) -> Dataset:
    tensors = getattr(dataset, "tensors", None)
    if tensors is not None:  # keep the in-memory fast path of _loop.batches
        from zoo.data.base import TensorPairDataset
        return TensorPairDataset(tensors[0][part.start:part.stop], tensors[1][part.start:part.stop])
    return torch.utils.data.Subset(dataset, list(part))


def predict(model: nn.Module, dataset: Dataset, device: torch.device, *,
            autocast: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`zoo._loop.predict` over ``dataset``, sharded over the ranks and gathered in order."""
    if not active():
        return _loop.predict(model, dataset, device, autocast=autocast)
    part = dist.shard(len(dataset))  # type: ignore[arg-type]
    mine = _loop.predict(model, _slice(dataset, part), device,
                         autocast=autocast) if len(part) else None
    parts = [p for p in dist.all_gather_objects(mine) if p is not None]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
