"""Deterministic, memory-safe batching for attribution methods.

The rows per forward+backward pass are derived from what one pass *stores*, never from timings
(which on a shared machine change from run to run). The first chunk of a job on a new
(model, sample shape, device) is run under :func:`measure`: a ``saved_tensors_hooks`` context
counts the bytes autograd keeps for backward per row (forward outputs per row for gradient-free
methods), so the probe is real work whose rows are part of the answer. :func:`plan_rows` turns
that footprint and the memory budget into a :class:`BatchPlan`, cached per model.

The rule (measured on the zoo and three other architectures, one and two CPU threads): on CPU a
pass is fastest while what it stores stays near the caches, ``32 MiB / bytes_per_row`` rows,
between 32 and 1024 rows (below 32 rows per-pass overheads dominate; above 1024 no model gained);
on CUDA the largest pass the budget allows, up to 4096 rows. Every plan is capped by the budget
(``3 x bytes_per_row`` per row: stored activations, their gradients and slack) and rounded down
to a power of two. :func:`run_chunked` walks the inputs in chunks and halves the chunk on an
out-of-memory error.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from explain._core.outputs import unwrap
from explain.errors import AttributionError

__all__ = ["BatchPlan", "Footprint", "plan_rows", "measure", "cached_plan", "remember",
           "run_chunked", "memory_budget", "expand_args", "clear_cache", "plan_key", "PROBE_ROWS"]

PROBE_ROWS = 64          # rows of the measured first chunk (it is part of the answer)
_CPU_TARGET = 32 * 2**20  # bytes one CPU pass may store for backward
_CPU_ROWS = (32, 1024)
_CUDA_MAX_ROWS = 4096
_SAFETY = 3              # stored activations + their gradients + slack
_CACHE: weakref.WeakKeyDictionary[nn.Module, dict[tuple, BatchPlan]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Footprint:
    """What one pass stored, per row (measured by :func:`measure`).

    Attributes
    ----------
    bytes_per_row : bytes kept for backward per row (forward outputs per row without grad).
    rows : rows in the pass measured (the largest pass of the probe).
    """

    bytes_per_row: int
    rows: int


@dataclass(frozen=True)
class BatchPlan:
    """The rows per pass chosen for one (model, sample shape, device).

    Attributes
    ----------
    rows : model evaluations (rows) per forward+backward pass.
    bytes_per_row : measured memory one row stores (0 when the plan was given, not measured).
    budget : the memory budget in bytes the plan respects.
    reason : which rule set ``rows`` (``"cache"``, ``"budget"``, ``"given"``...).
    """

    rows: int
    bytes_per_row: int = 0
    budget: int = 0
    reason: str = "given"


def clear_cache() -> None:
    """Forget every plan (the benchmark uses it to time a first call)."""
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


def _pow2_floor(n: int) -> int:
    return 1 << (max(1, int(n)).bit_length() - 1)


def plan_rows(footprint: Footprint, device: torch.device, budget: int) -> BatchPlan:
    """The rows per pass for a measured footprint: a pure function (no timing, no state).

    Examples
    --------
    >>> cpu = torch.device("cpu")
    >>> plan_rows(Footprint(bytes_per_row=250_000, rows=64), cpu, 2**30).rows
    128
    >>> plan_rows(Footprint(bytes_per_row=250_000, rows=64), cpu, 2**24).reason
    'budget'
    """
    per_row = max(1, footprint.bytes_per_row)
    fit = max(1, budget // (_SAFETY * per_row))
    if device.type == "cuda":
        want, reason = _CUDA_MAX_ROWS, "device"
    else:
        lo, hi = _CPU_ROWS
        want, reason = min(hi, max(lo, _CPU_TARGET // per_row)), "cache"
    if fit < want:
        want, reason = fit, "budget"
    return BatchPlan(rows=_pow2_floor(want), bytes_per_row=footprint.bytes_per_row,
                     budget=int(budget), reason=reason)


def plan_key(row: torch.Tensor, grad: bool, key: Any) -> tuple:
    """The cache key of a job: sample shape, dtype, device, gradient or not, extra part."""
    return (tuple(row.shape[1:]), row.dtype, str(row.device), grad, key)


def cached_plan(model: nn.Module, key: tuple, budget: int | None) -> BatchPlan | None:
    """A remembered plan for ``model`` and ``key``; re-planned when the budget changed."""
    plan = _CACHE.get(unwrap(model), {}).get(key)
    if plan is None or budget is None or budget == plan.budget:
        return plan
    fp = Footprint(plan.bytes_per_row, plan.rows)
    return plan_rows(fp, torch.device(key[2]), budget)


def remember(model: nn.Module, key: tuple, plan: BatchPlan) -> None:
    """Cache ``plan`` for ``model`` (the user's model under any output adapter; forgotten with
    the model)."""
    _CACHE.setdefault(unwrap(model), {})[key] = plan


class _Meter:
    """Bytes stored per pass; a pass starts at each call of the root module."""

    def __init__(self, skip: set[int]) -> None:
        self.skip = skip
        self.passes: list[tuple[int, int]] = []   # (rows, bytes)
        self._seen: dict[int, int] = {}
        self._rows = 0

    def start(self, _m: nn.Module, inputs: tuple) -> None:
        self.close()
        first = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
        self._rows = int(first.shape[0]) if first is not None and first.dim() > 0 else 1

    def store(self, t: torch.Tensor) -> None:
        try:
            storage = t.untyped_storage()
        except (RuntimeError, NotImplementedError):  # pragma: no cover - exotic tensors
            return
        ptr = storage.data_ptr()
        if ptr not in self.skip:
            self._seen[ptr] = storage.nbytes()

    def output(self, _m: nn.Module, _i: tuple, out: Any) -> None:
        for o in out if isinstance(out, tuple) else (out,):
            if isinstance(o, torch.Tensor) and not o.requires_grad:
                self.store(o)

    def close(self) -> None:
        if self._rows:
            self.passes.append((self._rows, sum(self._seen.values())))
        self._seen, self._rows = {}, 0

    def footprint(self) -> Footprint:
        self.close()
        if not self.passes:
            return Footprint(bytes_per_row=0, rows=0)
        rows, stored = max(self.passes, key=lambda p: (p[1] / p[0], p[0]))
        return Footprint(bytes_per_row=-(-stored // rows), rows=rows)


@contextlib.contextmanager
def measure(model: nn.Module) -> Iterator[Callable[[], Footprint]]:
    """Measure what each pass of ``model`` stores while the block runs real work.

    Yields a function returning the :class:`Footprint` (the pass with the most bytes per row).
    With gradients on, the bytes autograd saves for backward are counted (parameters and
    buffers excluded); without, the outputs of every module.
    """
    skip = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    meter = _Meter(skip)
    handles = [model.register_forward_pre_hook(meter.start)]
    handles += [m.register_forward_hook(meter.output) for m in model.modules()]

    def pack(t: torch.Tensor) -> torch.Tensor:
        meter.store(t)
        return t

    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            yield meter.footprint
    finally:
        for h in handles:
            h.remove()


def _is_oom(err: BaseException) -> bool:
    msg = str(err).lower()
    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in msg or (
        "can't allocate memory" in msg)


def run_chunked(fn: Callable[[int, int, int], Any], n: int, chunk: int, rows: int,
                warnings: list[str], start: int = 0) -> list[Any]:
    """Call ``fn(lo, hi, rows)`` over ``range(start, n)`` in chunks; halve both sizes on OOM.

    Returns the list of ``fn`` results in order. Raises :class:`AttributionError` when even one
    sample per pass runs out of memory.
    """
    outs, lo = [], start
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
