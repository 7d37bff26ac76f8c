"""TrainingMonitor on a user's own DDP loop (2 gloo ranks) equals a 1-process run on the same
global batches, with one collective per sampled step and none on the others."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from explain import TrainingMonitor
from explain._core import distributed as dist
from explain.monitor import _distributed
from tests.explain.distributed._launch import run_ranks

STEPS, GLOBAL_BATCH, EVERY = 6, 8, 2


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(STEPS * GLOBAL_BATCH, 6, generator=g), \
        torch.randint(0, 3, (STEPS * GLOBAL_BATCH,), generator=g)


def _train(every: int | None = EVERY) -> dict[str, Any]:
    """Each rank trains on its slice of every global batch; DDP averages the gradients."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    model = nn.parallel.DistributedDataParallel(net) if dist.world_size() > 1 else net
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    x, y = _data()
    calls = []
    real = torch.distributed.all_reduce

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(len(mon.history.steps))
        return real(*args, **kwargs)

    torch.distributed.all_reduce = counted
    try:
        with TrainingMonitor(model, every=every, temporal=False) as mon:
            for s in range(STEPS):
                lo = s * GLOBAL_BATCH
                part = dist.shard(GLOBAL_BATCH)
                xb = x[lo + part.start:lo + part.stop]
                yb = y[lo + part.start:lo + part.stop]
                opt.zero_grad()
                loss = nn.functional.cross_entropy(model(xb), yb)
                loss.backward()
                opt.step()
                mon.step(loss=loss.detach())
            mon.log_epoch(train_loss=loss.item())
    finally:
        torch.distributed.all_reduce = real
    return {"history": mon.history, "calls": calls, "every": mon.every_}


def _close(a: list[Any], b: list[Any], rel: float = 1e-4) -> bool:
    return len(a) == len(b) and all(
        (u is None and v is None) or math.isclose(u, v, rel_tol=rel, abs_tol=1e-6)
        for u, v in zip(a, b))


def test_ddp_monitor_history_matches_one_process_on_the_global_batches() -> None:
    # Arrange
    single = _train()["history"]
    # Act
    ranks = run_ranks(_train, world=2)
    # Assert
    h0, h1 = ranks[0]["history"], ranks[1]["history"]
    assert h0.steps == single.steps == [0, 2, 4]
    assert list(h0.layers) == list(single.layers) == ["0", "2"]
    for layer in ("0", "2"):
        for metric in ("grad_norm", "weight_norm", "update_ratio", "act_mean", "frac_zero"):
            assert _close(h0.layers[layer][metric], single.layers[layer][metric]), \
                (layer, metric, h0.layers[layer][metric], single.layers[layer][metric])
            assert h1.layers[layer][metric] == h0.layers[layer][metric]
    assert _close(h0.step_loss, single.step_loss)
    # one all_reduce per sampled step (taken before the record is appended), none between
    assert ranks[0]["calls"] == ranks[1]["calls"] == [0, 1, 2]


def test_auto_interval_is_fixed_under_ddp_and_kept_in_one_process() -> None:
    # Arrange / Act
    ranks = run_ranks(_train, None, world=2)
    # Assert
    assert [r["every"] for r in ranks] == [_distributed.DDP_EVERY] * 2
    assert ranks[0]["history"].steps == ranks[1]["history"].steps == [0]
    assert _distributed.interval(None, 200) is None
    assert _distributed.unwrap(nn.DataParallel(nn.Linear(2, 2))).__class__ is nn.Linear
