"""zoo.train under DDP (2 gloo ranks): one run folder, written by rank 0, that loads; metrics
reduced over the ranks; the sampler's shards cover each epoch once."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import pytest
import torch

import zoo
from explain._core import distributed as dist
from tests.explain.distributed._launch import run_ranks
from zoo import distributed as zdist
from zoo.data.base import TensorPairDataset


def _train(out: str, epochs: int, stop_after: int | None = None,
           resume: bool = False) -> dict[str, Any]:
    run = zoo.train(preset="mlp-digits", epochs=epochs, out=out, progress=False, device="cpu",
                    stop_after=stop_after, resume=resume)
    return {"rank": dist.rank(), "metrics": run.metrics, "epoch": run.epoch,
            "steps": run.history.meta.get("total_steps"),
            "weights": _digest(run.model)}


def _digest(model: torch.nn.Module) -> str:
    """The weights' bytes as one hash (small: results go back through a pipe of ~64 KiB)."""
    h = hashlib.sha256()
    for key, value in model.state_dict().items():
        h.update(key.encode() + value.detach().cpu().numpy().tobytes())
    return h.hexdigest()



def test_two_rank_training_writes_one_loadable_run(tmp_path: Path) -> None:
    # Arrange
    out = tmp_path / "run"
    # Act
    ranks = run_ranks(_train, str(out), 2, world=2)
    # Assert
    loaded = zoo.load_run(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    # one run folder: the weights, run.json and the writer lock rank 0 held (no rank-1 files)
    assert sorted(p.name for p in out.iterdir()) == ["model.safetensors", "run.json", "writer.lock"]
    assert [r["rank"] for r in ranks] == [0, 1] and loaded.epoch == 2
    assert ranks[0]["metrics"]["test_accuracy"] == ranks[1]["metrics"]["test_accuracy"] == \
        loaded.metrics["test_accuracy"]
    assert loaded.metrics["n_test"] == 180 and loaded.metrics["test_accuracy"] > 0.5
    # per rank: ceil(ceil(n_train / 2) / 64) steps per epoch, 2 epochs
    n_train = loaded.metrics["n_train"]
    assert ranks[0]["steps"] == 2 * math.ceil(math.ceil(n_train / 2) / 64)


def test_sampler_gives_each_rank_a_disjoint_share_of_the_epoch() -> None:
    # Arrange
    data = TensorPairDataset(torch.zeros(11, 1), torch.zeros(11, dtype=torch.long))
    # Act
    a, b = (list(torch.utils.data.DistributedSampler(data, num_replicas=2, rank=r, seed=3))
            for r in range(2))
    one = list(zdist.sampler(data, seed=3, epoch=1))   # one process: the whole epoch
    # Assert
    assert len(a) == len(b) == 6 and set(a) | set(b) == set(range(11))
    assert sorted(one) == list(range(11)) and one != list(zdist.sampler(data, seed=3, epoch=2))
    assert zdist.steps_per_epoch(1437, 64) == 23 and zdist.sum_over_ranks(3, 4) == (3, 4)


@pytest.mark.slow
def test_ddp_mlp_digits_reaches_the_single_process_accuracy(tmp_path: Path) -> None:
    # Arrange
    single = zoo.train(preset="mlp-digits", progress=False, device="cpu", monitor=False)
    # Act
    ranks = run_ranks(_train, str(tmp_path / "run"), 15, world=2)
    # Assert
    acc = zoo.load_run(tmp_path / "run").metrics["test_accuracy"]
    assert ranks[0]["epoch"] == 15
    assert abs(acc - single.metrics["test_accuracy"]) <= 0.03, (acc, single.metrics)


@pytest.mark.slow
def test_ddp_run_interrupted_and_resumed_equals_the_uninterrupted_one(tmp_path: Path) -> None:
    # Arrange: 3 epochs in one go, and 1 epoch + a resumed call for the other 2
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    run_ranks(_train, str(whole), 3, world=2)
    # Act
    first = run_ranks(_train, str(parts), 3, 1, world=2)
    resumed = run_ranks(_train, str(parts), 3, None, True, world=2)
    # Assert
    a, b = zoo.load_run(whole), zoo.load_run(parts)
    assert [r["epoch"] for r in first] == [1, 1] and [r["epoch"] for r in resumed] == [3, 3]
    assert first[0]["metrics"]["complete"] is False and b.metrics["complete"] is True
    assert sorted(p.name for p in parts.iterdir()) == sorted(p.name for p in whole.iterdir())
    for key, value in a.model.state_dict().items():  # the same weights, bit for bit
        assert torch.equal(value, b.model.state_dict()[key]), key
    assert resumed[0]["weights"] == resumed[1]["weights"] == _digest(a.model)  # on both ranks
    assert b.metrics["test_accuracy"] == a.metrics["test_accuracy"]
    timed = {"seconds"}  # wall time of each epoch: the one column that differs
    assert {k: v for k, v in b.history.epochs.items() if k not in timed} == \
        {k: v for k, v in a.history.epochs.items() if k not in timed}
    # the monitor's history: a resumed TrainingMonitor keeps the fixed grid (every 50 under
    # DDP; tests/explain/monitor: test_resume_continues_the_step_count), so the resumed run
    # records the same steps as the uninterrupted one
    resume_step = first[0]["steps"]
    assert b.history.meta["total_steps"] == a.history.meta["total_steps"] == 3 * resume_step
    assert a.history.steps == b.history.steps == [0]
    for layer, stats in a.history.layers.items():
        assert b.history.layers[layer]["grad_norm"][0] == stats["grad_norm"][0], layer


def _train_until_a_callback_raises() -> list[int]:
    def stop(epoch: int, epochs: int, metrics: dict[str, Any]) -> None:
        raise KeyboardInterrupt("the user stops")

    try:
        zoo.train(preset="mlp-digits", epochs=2, progress=False, device="cpu", callback=stop,
                  monitor=False)
    except KeyboardInterrupt:
        pass
    return list(zdist._WRAPPED)


@pytest.mark.slow
def test_an_interrupted_ddp_training_drops_its_wrapper() -> None:
    # Act: training stopped by an exception on every rank
    ranks = run_ranks(_train_until_a_callback_raises, world=2)
    # Assert: no DistributedDataParallel left behind to outlive the process group
    assert ranks == [[], []]
