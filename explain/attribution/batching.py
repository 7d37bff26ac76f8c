"""Auto-tuned, memory-safe batching for attribution methods.

The fastest number of rows per forward+backward pass depends on the model (on one CPU a CNN
peaked near 64 rows, a GRU near 512), so it is measured, not fixed: :func:`plan_batch` times a
forward+backward pass at a few batch sizes that fit the memory budget and caches the best one per
(model, sample shape, device). :func:`run_chunked` walks the inputs in chunks and halves the
chunk on an out-of-memory error.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from explain.errors import AttributionError

__all__ = ["BatchPlan", "plan_batch", "run_chunked", "memory_budget", "expand_args",
           "clear_cache"]

_CANDIDATES = (32, 64, 128, 256, 512, 1024, 2048, 4096)
_NO_PROBE_ROWS = 4096
_UNPROBED_ROWS = 1024
_PLATEAU = 0.98
_REPS = 3  # timed passes per size; the fastest counts (robust to preemption)
_MIN_PASS_S = 2e-3  # passes shorter than this are dominated by per-pass overhead
_CACHE: weakref.WeakKeyDictionary[nn.Module, dict[tuple, BatchPlan]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class BatchPlan:
    """The batch size chosen for one (model, sample shape, device).

    Attributes
    ----------
    rows : model evaluations (rows) per forward+backward pass.
    rows_per_s : measured forward+backward throughput (0.0 when not probed; the best probed
        size's when ``rows`` was extrapolated beyond the sizes the probe could afford).
    probed : rows -> measured rows/s for every size tried.
    bytes_per_row : estimated activation memory of one row (forward + backward).
    """

    rows: int
    rows_per_s: float = 0.0
    probed: dict[int, float] = field(default_factory=dict)
    bytes_per_row: int = 0


def clear_cache() -> None:
    """Forget every measured plan (the benchmark uses it to time the probe itself)."""
    _CACHE.clear()


def memory_budget(device: torch.device) -> int:
    """Bytes one attribution pass may use: half the free GPU memory, or a quarter of the
    available RAM capped at 2 GiB on CPU."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free * 0.5)
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
        avail = info.get("MemAvailable", 8 * 2**30)
    except OSError:  # pragma: no cover - non-Linux
        avail = 8 * 2**30
    return int(min(2 * 2**30, avail // 4))


def expand_args(args: tuple, index: slice | torch.Tensor, batch: int) -> tuple:
    """Select rows ``index`` of every tensor in ``args`` whose first dimension is ``batch``."""
    return tuple(a[index] if isinstance(a, torch.Tensor) and a.dim() > 0 and a.shape[0] == batch
                 else a for a in args)


def _bytes_per_row(model: nn.Module, forward: Callable, row: torch.Tensor, args: tuple) -> int:
    total = [row.numel() * row.element_size()]

    def hook(_m, _i, out):
        if isinstance(out, torch.Tensor):
            total[0] += out.numel() * out.element_size()
        elif isinstance(out, tuple):
            total[0] += sum(o.numel() * o.element_size() for o in out
                            if isinstance(o, torch.Tensor))

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.no_grad():
            forward(row, *args)
    finally:
        for h in handles:
            h.remove()
    return 3 * total[0]  # activations kept for backward + their gradients + slack


def _time_rows(forward: Callable, row: torch.Tensor, args: tuple, target: int | torch.Tensor,
               rows: int, grad: bool, reps: int = 1) -> float:
    """Rows/s of one forward(+backward) pass at ``rows`` rows (fastest of ``reps``)."""
    idx = torch.arange(rows, device=row.device) % row.shape[0]   # cycle the real samples
    x = row[idx]
    a = expand_args(args, idx, row.shape[0])
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        if grad and x.is_floating_point():
            xg = x.detach().requires_grad_(True)
            with torch.enable_grad():
                torch.autograd.grad(forward(xg, *a)[:, target].sum(), xg)
        else:
            with torch.no_grad():
                forward(x, *a)
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        best = min(best, time.perf_counter() - start)
    return rows / best


def plan_batch(model: nn.Module, forward: Callable, row: torch.Tensor, args: tuple = (), *,
               target: int = 0, total_rows: int | None = None, budget: int | None = None,
               grad: bool = True, key: Any = None) -> BatchPlan:
    """Measure forward(+backward) throughput at a few batch sizes and return the best.

    Parameters
    ----------
    model : the module (cache key; the cache forgets it when the model is deleted).
    forward : ``forward(x, *args) -> logits``.
    row : a few real samples ``[k, *shape]`` in the space the method differentiates (cycled
        to fill each probe batch, so e.g. sequence lengths are realistic).
    args : extra forward arguments for those samples (tensors with batch dimension k).
    target : class whose logit is differentiated.
    total_rows : rows the job needs in all; the sizes tried add up to at most a fifth of it,
        and a job of at most 4096 rows is not probed (passes of up to 1024 rows).
    budget : memory budget in bytes (default :func:`memory_budget`).
    grad : time forward+backward (gradient methods) or forward only (perturbation methods).
    key : extra cache key part (e.g. the attribution space).
    """
    device = row.device
    cache_key = (tuple(row.shape[1:]), row.dtype, str(device), grad, key)
    cached = _CACHE.get(model, {}).get(cache_key)
    if cached is not None and (budget is None or cached.rows * cached.bytes_per_row <= budget):
        return cached
    budget = memory_budget(device) if budget is None else budget
    per_row = max(1, _bytes_per_row(model, forward, row[:1], expand_args(args, slice(0, 1),
                                                                           row.shape[0])))
    fits = [r for r in _CANDIDATES if r * per_row <= budget] or [max(1, budget // per_row)]
    if total_rows is not None:
        if total_rows <= _NO_PROBE_ROWS:
            # a small job: probing would cost more than it could save
            rows = min(total_rows, _UNPROBED_ROWS, max(1, budget // per_row))
            return BatchPlan(rows=max(1, rows), bytes_per_row=per_row)
        # the probe may cost at most a fifth of the job
        fits = [r for i, r in enumerate(fits)
                if _REPS * sum(fits[:i + 1]) <= total_rows // 5] or fits[:1]
    probed: dict[int, float] = {}
    worse = 0
    _time_rows(forward, row, args, target, fits[0], grad)  # warm-up (allocator, kernels)
    for rows in fits:
        try:
            probed[rows] = _time_rows(forward, row, args, target, rows, grad, reps=_REPS)
        except (torch.cuda.OutOfMemoryError, RuntimeError) as err:
            if not _is_oom(err):
                raise
            break
        if probed[rows] < max(probed.values()):
            worse += 1
            if worse >= 2:
                break
        else:
            worse = 0
    # the largest size within 2% of the fastest: fewer passes, and robust to timing noise
    top = max(probed.values())
    best = max(r for r, v in probed.items() if v >= _PLATEAU * top)
    tried = list(probed)
    if best == tried[-1] and len(tried) > 1 and probed[best] >= 1.1 * probed[tried[-2]]:
        # still climbing at the largest size the probe could afford: go up to 4x further, or
        # up to 16x while passes stay short (then fixed per-pass costs, e.g. captum's Python
        # per batch, dominate: the zoo MLP needed 2048 rows, ~2 ms, to reach its limit)
        short = 4 * best / probed[best] < _MIN_PASS_S
        factor = 16 if short else 4
        bigger = [r for r in _CANDIDATES if best < r <= factor * best and r * per_row <= budget]
        best = bigger[-1] if bigger else best
    plan = BatchPlan(rows=best, rows_per_s=probed.get(best, top), probed=probed,
                     bytes_per_row=per_row)
    _CACHE.setdefault(model, {})[cache_key] = plan
    return plan


def _is_oom(err: BaseException) -> bool:
    msg = str(err).lower()
    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in msg or (
        "can't allocate memory" in msg)


def run_chunked(fn: Callable[[int, int, int], Any], n: int, chunk: int, rows: int,
                warnings: list[str]) -> list[Any]:
    """Call ``fn(lo, hi, rows)`` over ``range(n)`` in chunks; halve both sizes on OOM.

    Returns the list of ``fn`` results in order. Raises :class:`AttributionError` when even one
    sample per pass runs out of memory.
    """
    outs, lo = [], 0
    chunk, rows = max(1, chunk), max(1, rows)
    while lo < n:
        hi = min(n, lo + chunk)
        try:
            outs.append(fn(lo, hi, rows))
        except (torch.cuda.OutOfMemoryError, RuntimeError) as err:
            if not _is_oom(err):
                raise
            if chunk == 1 and rows == 1:
                raise AttributionError(
                    "Attribution ran out of memory with one sample per pass. Free memory, "
                    "lower 'n_steps'/'n_samples', or move the model to CPU.") from err
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            chunk, rows = max(1, chunk // 2), max(1, rows // 2)
            warnings.append(f"out of memory: retried with {chunk} samples and {rows} rows "
                            "per pass")
            continue
        lo = hi
    return outs

