"""How much last-level cache this process gets now, measured (for benchmarks/attribution.py).

The plans count the cache the OS reports, at most 4 MiB per CPU sharing it
(:func:`explain.attribution.cpu_cache.cache_bytes`). What a process on a shared host gets depends
on what the other cores of that cache run: on one AMD EPYC host with a 32 MiB L3 shared by 2
vCPUs, the zoo cnn's best pass was 32 rows one day and 128-256 another. This measures it:
``c = a + b`` (two operands read, one written, as the cache rule assumes) at operand sizes
from 256 KiB to 64 MiB, interleaved repeats, and reports the time per byte and the largest
size still at cache speed. It is printed beside each benchmark run, so the plan's misses can
be read against what the host gave; the plans do not use it.
"""

from __future__ import annotations

import statistics
import time

import torch
from _attribution_limits import at_threads

__all__ = ["SIZES", "stream_per_byte", "knee", "describe"]

#: bytes per operand: 256 KiB .. 64 MiB
SIZES = tuple(2**k for k in range(18, 27))
_TRAFFIC = 64 * 2**20   # bytes of each operand streamed per timing (at least 2 adds)


def stream_per_byte(threads: int, sizes: tuple[int, ...] = SIZES, repeats: int = 5
                    ) -> dict[int, float]:
    """Seconds per byte moved by ``torch.add(a, b, out=c)`` with float32 operands of each size
    (3 x size bytes an add), at ``threads`` torch threads: the median of ``repeats``, the sizes
    interleaved in alternating order."""
    with at_threads(threads):
        bufs = {s: [torch.rand(s // 4) for _ in range(3)] for s in sizes}
        times: dict[int, list[float]] = {s: [] for s in sizes}
        for r in range(repeats):
            for s in (sizes if r % 2 else sizes[::-1]):
                a, b, c = bufs[s]
                adds = max(2, _TRAFFIC // s)
                torch.add(a, b, out=c)
                start = time.perf_counter()
                for _ in range(adds):
                    torch.add(a, b, out=c)
                times[s].append((time.perf_counter() - start) / (adds * 3 * s))
    return {s: statistics.median(t) for s, t in times.items()}


def knee(per_byte: dict[int, float], slower: float = 1.5) -> int:
    """The largest operand size (bytes) at cache speed: the sizes in order, up to the first
    whose time per byte exceeds ``slower`` x the median of the three smallest (cache speed)
    after one that did not (a slow first size, a timing hiccup, does not end the scan).

    >>> mib = 2**20
    >>> knee({mib: 1.0, 2 * mib: 1.1, 4 * mib: 1.2, 8 * mib: 2.3, 16 * mib: 1.2})
    4194304
    """
    sizes = sorted(per_byte)
    fast = statistics.median(per_byte[s] for s in sizes[:3])
    best = 0
    for s in sizes:
        if per_byte[s] <= slower * fast:
            best = s
        elif best:
            break
    return best or sizes[0]


def describe(threads: int) -> str:
    """One line: the largest operand at cache speed (and all three operands together), and the
    time per byte at every size."""
    per_byte = stream_per_byte(threads)
    k, mib = knee(per_byte), 2**20
    times = " ".join(f"{s / mib:g}:{per_byte[s] * 1e12:.0f}" for s in sorted(per_byte))
    return (f"measured now, c = a + b at cache speed up to {k / mib:g} MiB an operand "
            f"({3 * k / mib:g} MiB in all); ps a byte at MiB an operand: {times}")
