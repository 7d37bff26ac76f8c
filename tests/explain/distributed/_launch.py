"""Run a function on 2 CPU processes joined by a gloo process group (the tests' torchrun)."""

from __future__ import annotations

import gc
import os
import sys
import tempfile
import types
from collections.abc import Callable
from typing import Any

import torch
import torch.multiprocessing as mp


def _worker(rank: int, fn: Callable[..., Any], world: int, folder: str, args: tuple,
            results: Any) -> None:
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.distributed.init_process_group("gloo", init_method=f"file://{folder}/store",
                                         rank=rank, world_size=world)
    try:
        out = fn(*args)
    finally:
        # free what fn left in reference cycles (a DistributedDataParallel model held by a
        # monitor's hooks) while the group is alive: a DDP reducer destroyed after the group
        # aborts the process at exit ("terminate called without an active exception")
        gc.collect()
        torch.distributed.destroy_process_group()
    results.put((rank, out))  # the test's own values, back to the parent process


def run_ranks(fn: Callable[..., Any], *args: Any, world: int = 2) -> list[Any]:
    """``fn(*args)`` on ``world`` ranks; every rank's return value, in rank order.

    ``fn`` must be a module-level function (the processes are spawned)."""
    main = sys.modules["__main__"]
    # the spawned processes re-import the parent's __main__ unless it has no file: under
    # pytest that may be a script another test left there (Streamlit's AppTest does)
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        results = mp.get_context("spawn").SimpleQueue()
        with tempfile.TemporaryDirectory() as folder:
            mp.spawn(_worker, args=(fn, world, folder, args, results), nprocs=world, join=True)
        got = dict(results.get() for _ in range(world))
        return [got[r] for r in range(world)]
    finally:
        sys.modules["__main__"] = main
