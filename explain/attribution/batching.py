"""Deterministic, memory-safe batching for attribution methods.

The rows per forward+backward pass are derived from what one pass *writes and stores*, never
from timings (which on a shared machine change from run to run). On a new (model, sample
shape, device), :func:`~.footprint.measure` sizes a forward of 4 samples with gradients (see
:mod:`.footprint`: the bytes stored for backward per row, the largest tensor of the pass, and
the nodes backward runs with their median result). :func:`plan_rows` turns that
:class:`~.footprint.Footprint`, the last-level cache size, the threads and the memory budget
into a :class:`BatchPlan`, cached per model, so a first call runs the passes of a later one.

Why the largest tensor: on CPU a pass slows down once its biggest operator no longer works in
cache. Measured with one thread (us per row at 256 / 512 / 1024 / 2048 rows): a packed GRU
(zoo rnn) 63 / 68 / 79 / 126 - its backward zeroes and accumulates the gradient of the whole
packed input projection ``[rows x T, 3H]`` once per time step, 12 KiB per row, so the per-row
cost grows once ``rows x 12 KiB`` leaves the cache; the zoo transformer (36 KiB per row, its
attention scores) 454 / 496 / 618 / 770; the zoo CNN (49 KiB per row) flat to 512 then worse; a
bidirectional GRU (30 KiB per row, many small steps whose per-pass overhead wants large
passes) best at 1024. The bytes stored for backward did not predict this (the packed GRU stores
30 KiB per row, the CNN 237 KiB, yet the CNN takes the larger passes). On CPU the cache rule is
the largest power of two with ``rows x largest <= L3 / 4`` (the operator reads about two
operands and writes one of that size, and the L3 is shared with the other cores), between 32
and 2048 rows (below 32 the per-pass overhead dominates). Only nets of small tensors reach the
cap, which was 1024 until stop 31: at 2048 rows a GRUCell loop over 30 steps (hidden 32) took
0.79 [0.67-0.91] of its 1024-row time at two threads and 0.99 at one (IG of 3,200 rows, 15
interleaved repeats, AMD EPYC), the zoo MLP and a 16-layer MLP of width 64 0.89-1.05 (IG and
occlusion, 1 and 2 threads), and 4096 rows gained nothing more. With backward the rows are at
least 32 per thread (each thread works on its slice of every operator) while 32 rows of the
largest tensor fit the cache; a forward without gradients has its own rule (:func:`_cpu_rows`).
The L3 is the size the OS reports, at most 4 MiB per CPU sharing it (:func:`cache_bytes`: a
virtual machine reports its host's whole cache). The threads share that L3: torch splits an
operator's rows over them, so together their slices must fit it, whatever their number. (Until
stop 23 the rule allowed ``threads x L3 / 4``, from timings that, as far as the notes show, ran
under ``OMP_WAIT_POLICY=PASSIVE`` (below). Under
the default policy, at two threads, interleaved IG jobs at the old / new plan: zoo cnn
256 / 128 rows 0.70 / 0.51 s, zoo transformer 256 / 128 1.39 / 1.22 s, resnet_bn 128 / 64
5.9 / 5.0 s, a TCN 1024 / 512 0.56 / 0.43 s, a conv + bidirectional LSTM 512 / 256 1.05 /
0.91 s; the zoo rnn and a small ViT the same at both.) The per-pass cost that does not shrink
with threads has its own rule below. On CUDA the plan is the largest pass the budget allows,
up to 4096 rows. Every plan is capped by the budget (``3 x bytes_per_row`` per row: stored
activations, their gradients and slack). :func:`run_chunked` walks the inputs in chunks
and halves the chunk on an out-of-memory error.

A kernel that keeps its own workspace for backward (oneDNN's fused LSTM: 393 kB per row for
one layer of hidden 128 over 50 steps, against 25.6 kB of output) is read whole by that
kernel's backward, step by step, while the gradients it writes per step are small: the
largest single storage kept for backward (copies of a parameter's size, a kernel's own weight
format, left out) must fit the last-level cache by itself, ``rows x saved_largest <= L3``.
Measured on six LSTMs (1 and 2 layers, hidden 64 and 128, uni- and bidirectional, one behind a
convolution; IG of 3,200 rows, 3 repeats, one thread), the best of 32..2,048 rows was the
rule's choice every time (64 or 128 rows), where the result-only rule planned 256-512 rows,
1.35-1.93x slower; at two threads the same (plan over best 0.95-1.24, noisy). A pass without
gradients (occlusion) keeps no workspace, and ignores it.

Two rules raise the cache rule's rows for graphs of many small operators (recurrent nets),
from the same measured pass (the nodes on the input's gradient path and their median result):

- **Per-pass overhead.** Each autograd node costs a fixed time per pass whatever its rows
  (measured at one thread: 7 us per node on a bidirectional GRU, 13 us on a two-layer GRU of
  hidden 128), while a row costs about 1.4 ns per byte it stores (0.54-0.85 GB/s on the zoo
  rnn and the same two GRUs). ``rows >= threads x nodes x 64 KiB / bytes_per_row`` keeps the
  fixed part near a tenth of a pass (``threads``: a row's cost shrinks with them, a node's
  does not), rounded to the nearest power of two while the largest tensor's rows fit the
  whole reported last-level cache (:func:`_overhead_rows`). The two-layer GRU at one thread:
  256 rows instead of the cache rule's 64 (944 us per row at 64, 768 at 128, 718 at 256).
- **Threads.** torch's ``at::parallel_for`` runs an element-wise operator on one thread unless
  it has more than ``GRAIN_SIZE`` (32,768) elements. A bidirectional GRU's step operators have
  64 elements per row: at two threads 512-row passes took 167 us per row, 520-row passes 129.
  The rows must give the median operator more than ``(threads - 1) x GRAIN_SIZE`` elements
  (1,024 rows for that GRU, 512 for hidden 128), within the 2,048-row cap.

Five models the rules were not chosen from (IG job of 3,200 rows, plan's time over the best
of 64..2,048 rows, 3 repeats, 1 / 2 threads): a TCN 1.01 / 1.11, a small ViT 1.02 / 1.15, a
GRUCell loop 1.01 / 1.14 and a 16-layer MLP 1.17 / 1.19 (both want 2,048 rows, above the cap;
the MLP is a 13 ms job), and a conv + bidirectional LSTM 1.29 / 1.53: oneDNN's fused LSTM slows
past 64-128 rows, and nothing its graph or saved tensors show predicts it (a one-layer LSTM
with a similar 193 KiB workspace per row is fastest at 512-1,024 rows in equal passes). The
two-thread curves are jagged at 3 repeats (the TCN was best at 256 rows in one run, at 1,024 in
the next); the interleaved A/B above used 4-5.

With ``OMP_WAIT_POLICY=PASSIVE`` idle OpenMP threads sleep after every
parallel region and are woken by the next, a per-operator cost that does not shrink with rows:
the zoo rnn (480 autograd nodes) then takes 0.29 s instead of 0.15 s at 1024 rows and its curve
has no clear best (512 / 1024 / 2048 rows: 0.25 / 0.29 / 0.26 s); the plan does not model it.
"""

from __future__ import annotations

import dataclasses
import weakref
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from explain._core.outputs import unwrap
from explain.attribution.backoff import OUT_OF_MEMORY
from explain.attribution.backoff import run_chunked as run_chunked  # re-exported: tests, callers
from explain.attribution.cpu_cache import cache_bytes as cache_bytes  # re-exported: callers
from explain.attribution.cpu_cache import reported_size
from explain.attribution.footprint import Footprint
from explain.attribution.footprint import measure as measure  # re-exported: tests, callers

# Footprint and measure live in .footprint, run_chunked in .backoff (re-exported above)
__all__ = ["BatchPlan", "plan_rows", "cached_plan", "remember", "memory_budget",
           "available_memory", "expand_args", "clear_cache", "plan_key", "PROBE_ROWS",
           "cache_bytes"]

PROBE_ROWS = 64          # a job of at most this many rows runs in one pass, unplanned
_CACHE_SHARE = 4         # rows x largest tensor <= last-level cache / _CACHE_SHARE
_FORWARD_SHARE = 2       # the same for a forward without gradients (nothing stored for backward)
_CPU_ROWS = (32, 2048)
_CUDA_MAX_ROWS = 4096
_SAFETY = 3              # stored activations + their gradients + slack
_GRAIN_SIZE = 32768      # at::internal::GRAIN_SIZE: elements below which an operator is serial
_NODE_BYTES = 64 * 2**10  # stored bytes per row whose per-row work costs ~9 nodes' fixed cost
_CACHE: weakref.WeakKeyDictionary[nn.Module, dict[tuple, BatchPlan]] = weakref.WeakKeyDictionary()



@dataclass(frozen=True)
class BatchPlan:
    """The rows per pass chosen for one (model, sample shape, device).

    Attributes
    ----------
    rows : model evaluations (rows) per forward+backward pass.
    bytes_per_row : measured memory one row stores (0 when the plan was given, not measured).
    budget : the memory budget in bytes the plan respects.
    reason : which rule set ``rows`` (``"cache"``, ``"overhead"``, ``"threads"``, ``"budget"``,
        ``"device"``, ``"given"``, ``"one pass"``: the whole job fit in one pass of at most
        ``PROBE_ROWS`` rows, so nothing was measured; ``"out of memory"``: cut to the largest
        pass that fit after an out-of-memory error).
    largest_per_row : measured bytes per row of the largest tensor a pass writes.
    cache : the last-level cache size in bytes the plan used (0 on CUDA or when given).
    op_elements_per_row : measured median elements per row of an operator's result.
    nodes : measured autograd nodes per pass.
    saved_largest_per_row : measured bytes per row of the largest storage kept for backward.
    whole_cache : the whole last-level cache in bytes, as reported, the plan's overhead rule
        was bounded by (0 on CUDA or when given).
    """

    rows: int
    bytes_per_row: int = 0
    budget: int = 0
    reason: str = "given"
    largest_per_row: int = 0
    cache: int = 0
    op_elements_per_row: int = 0
    nodes: int = 0
    saved_largest_per_row: int = 0
    whole_cache: int = 0


def clear_cache() -> None:
    """Forget every plan and what the first call remembered per model (the footprints, structure
    traces, gradient checks and one-sample input checks), so the next call is a first call on a
    new shape (the benchmark times one)."""
    from explain.attribution import preflight, prepare, structure  # they import this module

    _CACHE.clear()
    prepare._KNOWN.clear()
    structure._INFORMATIVE.clear()
    preflight._ACCEPTED.clear()


def available_memory(device: torch.device) -> int:
    """Bytes free now: free GPU memory on CUDA, else ``MemAvailable`` from ``/proc/meminfo``
    (8 GiB when the OS does not say)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - non-Linux
        pass
    return 8 * 2**30


def memory_budget(device: torch.device) -> int:
    """Bytes one attribution pass may use: half the free GPU memory, or a quarter of the
    available RAM capped at 2 GiB on CPU."""
    if device.type == "cuda":
        return available_memory(device) // 2
    return int(min(2 * 2**30, available_memory(device) // 4))


def expand_args(args: tuple, index: slice | torch.Tensor, batch: int) -> tuple:
    """Select rows ``index`` of every tensor in ``args`` whose first dimension is ``batch``."""
    return tuple(a[index] if isinstance(a, torch.Tensor) and a.dim() > 0 and a.shape[0] == batch
                 else a for a in args)


def _pow2_floor(n: int) -> int:
    return 1 << (max(1, int(n)).bit_length() - 1)


def plan_rows(footprint: Footprint, device: torch.device, budget: int,
              cache: int | None = None, threads: int | None = None,
              backward: bool = True, whole_cache: int | None = None) -> BatchPlan:
    """The rows per pass for a measured footprint: a pure function of the footprint, the
    device, the budget, the last-level cache (default: :func:`cache_bytes`), the CPU
    threads (default: ``torch.get_num_threads()``), whether the passes run backward
    (``backward=False``: forward passes without gradients, :func:`_cpu_rows`), and the whole
    last-level cache as the OS reports it, uncapped (``whole_cache``: the overhead rule's bound,
    :func:`_overhead_rows`; default: what the OS says, or ``cache`` when that is given); no
    timing.

    Examples
    --------
    >>> cpu, mib = torch.device("cpu"), 2**20
    >>> fp = Footprint(bytes_per_row=250_000, rows=64, largest_per_row=50_000)
    >>> [plan_rows(fp, cpu, 2**30, cache=32 * mib, threads=t).rows for t in (1, 2)]
    [128, 128]
    >>> plan_rows(Footprint(bytes_per_row=250_000, rows=64), cpu, 2**24, cache=32 * mib).reason
    'budget'

    Two recurrent nets (measured footprints). A bidirectional GRU (hidden 64): 1,055 nodes of
    64 elements per row and a 30 KiB input projection; the fixed cost of its nodes wants ~475
    rows per thread (at two threads its operators would also run on one thread below 1,024
    rows). A two-layer GRU of hidden 128: at one thread the cache rule's 64 rows would spend a
    third of each pass on the fixed cost of its 1,572 nodes; at two, 512 rows of its 90 KiB
    input projection would overflow the cache, and the threads rule sets them.

    >>> bigru = Footprint(bytes_per_row=145_496, rows=4, largest_per_row=30_720,
    ...                   op_elements_per_row=64, nodes=1055)
    >>> gru = Footprint(bytes_per_row=462_060, rows=4, largest_per_row=92_160,
    ...                 op_elements_per_row=128, nodes=1572)
    >>> [[(p.rows, p.reason) for p in (plan_rows(fp, cpu, 2**30, cache=32 * mib, threads=t)
    ...                                 for t in (1, 2))] for fp in (bigru, gru)]
    [[(512, 'overhead'), (1024, 'overhead')], [(256, 'overhead'), (512, 'threads')]]
    """
    per_row = max(1, footprint.bytes_per_row)
    fit = max(1, budget // (_SAFETY * per_row))
    llc = whole = 0
    if device.type == "cuda":
        want, reason = _CUDA_MAX_ROWS, "device"
    else:
        llc = cache_bytes() if cache is None else int(cache)
        nthreads = max(1, torch.get_num_threads() if threads is None else int(threads))
        if whole_cache is not None:
            whole = int(whole_cache)
        else:   # a given cache stands for the whole one too (tests, plans made from a cache)
            whole = reported_size() if cache is None else llc
        want, reason = _cpu_rows(footprint, llc, nthreads, backward, whole)
    if fit < want:
        want, reason = fit, "budget"
    if 0 < footprint.fitted_rows < want:   # the measured forward itself ran out of memory
        want, reason = footprint.fitted_rows, OUT_OF_MEMORY
    return BatchPlan(rows=_pow2_floor(want), bytes_per_row=footprint.bytes_per_row,
                     budget=int(budget), reason=reason,
                     largest_per_row=footprint.largest_per_row, cache=llc,
                     op_elements_per_row=footprint.op_elements_per_row, nodes=footprint.nodes,
                     saved_largest_per_row=footprint.saved_largest_per_row, whole_cache=whole)


def _cpu_rows(footprint: Footprint, llc: int, threads: int,
              backward: bool, llc_whole: int) -> tuple[int, str]:
    """The CPU plan before the budget: the cache rule (the largest tensor's rows fit a share of
    the last-level cache, which the threads share; without gradients, each thread's slice),
    raised to the floor of 32 rows (per thread with backward, below), by the per-pass overhead
    rule and then by the threads rule, within ``_CPU_ROWS``.

    A pass without gradients (``backward=False``: occlusion, feature ablation) stores nothing
    for a backward and frees each result once its consumer ran: its operator reads one input
    and writes one result, no gradient and no stored activation share the cache with them, so
    the largest tensor's rows may fill half of it (``_FORWARD_SHARE``, against a quarter with
    backward). A row costs such a pass about a third of a forward+backward row while its fixed
    cost per pass (the layers' calls, captum's perturbed batch) stays, so the larger passes
    pay. Occlusion of 64 samples, plan over the best of 32..1,024 rows (3 interleaved repeats;
    at a quarter / at half the cache), one thread: zoo cnn 1.13 / 1.05, transformer 1.03 /
    1.00, a 2-layer LSTM 1.04 / 1.02, zoo rnn and a bidirectional GRU 1.00 / 1.00; two
    threads: cnn 1.12 / 1.12, LSTM 1.13 / 1.06, the others 1.00-1.04 either way. The whole
    cache was too much: a residual CNN with BatchNorm (128 KiB largest tensor per row) ran
    18% slower at its 64 rows than at 32 (one thread, 32 samples).

    At ``T`` threads such a forward lets each thread's slice of the rows fill half the cache
    (``rows x largest <= T x cache / 2``, the floor 32 rows in all): a forward's fixed cost per
    pass grew 1.6-2.3x from one thread to two on the zoo cnn, transformer and a bidirectional
    GRU while a row's cost halved (stop 32), so its best pass grows with the threads. With
    backward the floor of 32 rows per thread holds only while 32 rows of the largest tensor fit
    the cache. Measured at two threads (occlusion of 64 samples, plan over the best of 32..512
    rows, 5 interleaved repeats, Intel Xeon, 2 vCPUs; the old plan / the fixed size these rules
    now choose): zoo cnn 1.15 / 1.05 (256 rows best; an AMD EPYC host's best was 256 too, stop
    31), a ConvNeXt 1.11 / 1.04, a depthwise-separable CNN 1.39 / 1.00 (the per-thread floor
    gave it 64 rows, 32 were best), zoo transformer 1.05 / 1.00, an LSTM 1.04 / 1.00, a text CNN
    1.05 / 1.00, resnet_bn 1.02 / 1.02; held out from choosing them: a VGG-style CNN on 3x64x64
    (512 KiB largest tensor per row) 1.30 / 1.00, and its integrated gradients 1.29 / 1.00 (the
    backward floor), a small ViT 1.05 / 1.05, a TCN 1.01 / 1.01. One thread is unchanged.
    ``llc_whole``: the last-level cache as reported, uncapped (:func:`_overhead_rows`)."""
    lo, hi = _CPU_ROWS
    largest = max(1, footprint.largest_per_row or footprint.bytes_per_row)
    if backward:
        fits = llc // (_CACHE_SHARE * largest)
        if footprint.saved_largest_per_row:  # a workspace backward reads whole must fit
            fits = min(fits, llc // footprint.saved_largest_per_row)
        # each thread works on its slice: the floor holds per thread, while a slice fits
        floor = lo * threads if lo * largest <= llc else lo
    else:                      # each thread's slice of the rows fills half the cache
        fits, floor = threads * llc // (_FORWARD_SHARE * largest), lo
    want, reason = _pow2_floor(min(hi, max(lo, fits))), "cache"
    if min(hi, floor) > want:
        want, reason = min(hi, floor), "threads"
    fixed = _overhead_rows(footprint, threads, largest, llc_whole)
    if min(hi, fixed) > want:
        want, reason = min(hi, fixed), "overhead"
    spread = min(hi, _rows_for_threads(footprint.op_elements_per_row, threads))
    if spread > want:
        want, reason = spread, "threads"
    return want, reason


def _overhead_rows(footprint: Footprint, threads: int, largest: int, llc_whole: int) -> int:
    """The rows that keep a pass's fixed cost near a tenth of it (0 when nothing was measured).

    A pass costs ~10 us per autograd node whatever its rows, a row ~1.4 ns per byte it stores
    (both measured at one thread), so ``threads x nodes x 64 KiB / bytes_per_row`` rows make
    the fixed part a tenth. Rounded to the *nearest* power of two on a log scale (the fixed
    part between 7% and 14%), as far as ``rows x largest`` fits the whole last-level cache as
    reported (``llc_whole``), else rounded down. A recurrent net's backward writes the gradient of its
    input projection (the largest tensor, ``[rows, T, 3H]`` for a GRU) at every step; once it
    leaves the cache each step streams it from memory. Measured on this rule's nets (IG of
    3,200 rows, one thread, interleaved, AMD EPYC with a 32 MiB L3, two sessions): a
    bidirectional GRU 475 raw rows, 512 rows 6-12% faster than 256 (15 MiB); a two-layer GRU
    of hidden 128 223 raw, 256 rows 4-7% faster than 128 (23 MiB); a GRU with attention
    pooling over 120 steps 367 raw, 512 rows 5-14% slower than 256 (45 MiB, past the cache:
    it keeps 256); the zoo rnn 536 raw, 512 either way. Where a virtual machine reports its
    host's whole cache (:func:`~.cpu_cache.cache_bytes`) the bound is loose: only the rounding
    holds.
    """
    raw = threads * footprint.nodes * _NODE_BYTES / max(1, footprint.bytes_per_row)
    if raw < 1:
        return 0
    down = _pow2_floor(int(raw))
    up = 2 * down
    if raw * raw > down * up and up * largest <= llc_whole:  # raw > down x sqrt(2)
        return up
    return down


def _rows_for_threads(op_elements: int, threads: int) -> int:
    """The fewest rows (a power of two) at which a typical operator of ``op_elements`` per row
    runs on all ``threads``: torch's ``at::parallel_for`` splits an element-wise operator into
    ``ceil(numel / GRAIN_SIZE)`` tasks and runs it inline below the grain, so it needs
    ``numel > (threads - 1) x GRAIN_SIZE``; 0 with one thread or nothing measured.

    Examples
    --------
    >>> _rows_for_threads(64, 2), _rows_for_threads(128, 2), _rows_for_threads(64, 1)
    (1024, 512, 0)
    """
    if threads <= 1 or op_elements <= 0:
        return 0
    need = (threads - 1) * _GRAIN_SIZE // op_elements + 1
    return 1 << (need - 1).bit_length()


def plan_key(row: torch.Tensor, grad: bool, key: Any) -> tuple:
    """The cache key of a job: sample shape, dtype, device, gradient or not, extra part, and
    the torch threads (the CPU plan depends on them)."""
    return (tuple(row.shape[1:]), row.dtype, str(row.device), grad, key,
            torch.get_num_threads())


def cached_plan(model: nn.Module, key: tuple, budget: int | None) -> BatchPlan | None:
    """A remembered plan for ``model`` and ``key``; re-planned when the budget changed (no
    larger than a plan an out-of-memory error cut)."""
    plan = _CACHE.get(unwrap(model), {}).get(key)
    if plan is None or budget is None or budget == plan.budget:
        return plan
    fp = Footprint(plan.bytes_per_row, plan.rows, plan.largest_per_row, plan.op_elements_per_row,
                   plan.nodes, plan.saved_largest_per_row)
    again = plan_rows(fp, torch.device(key[2]), budget, plan.cache or None, backward=key[3],
                      whole_cache=plan.whole_cache or None)
    if plan.reason == OUT_OF_MEMORY and again.rows > plan.rows:  # the device said no: keep it
        return dataclasses.replace(again, rows=plan.rows, reason=OUT_OF_MEMORY)
    return again


def remember(model: nn.Module, key: tuple, plan: BatchPlan) -> None:
    """Cache ``plan`` for ``model`` (the user's model under any output adapter; forgotten with
    the model)."""
    _CACHE.setdefault(unwrap(model), {})[key] = plan
