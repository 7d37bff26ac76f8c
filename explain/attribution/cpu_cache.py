"""The last-level cache the batch plan counts (:mod:`.batching`), from what the OS reports."""

from __future__ import annotations

import contextlib
import functools
import os

__all__ = ["cache_bytes", "reported_size"]

_DEFAULT_CACHE = 32 * 2**20  # when the OS does not say
_LLC_PER_CPU = 4 * 2**20   # the most last-level cache a CPU can count on (cache_bytes)


@functools.cache
def cache_bytes() -> int:
    """The last-level cache this process can count on, in bytes: the size the OS reports
    (sysfs, then ``sysconf``; 32 MiB when neither says), at most ``_LLC_PER_CPU`` for each CPU
    the OS says shares it and this process may run on (a container pinned to 2 CPUs of a
    64-core socket gets 2 CPUs' share).

    A virtual machine reports the host's whole cache as its own: 2 vCPUs of a Xeon 6 see 480 MiB,
    shared (sysfs says) by those 2 alone, while the host's other cores and guests use the same
    cache. No CPU gives a core that much: current server parts give 1.9-5 MiB per core (Xeon
    Sapphire/Emerald/Granite Rapids 1.9/5/3.8, EPYC Genoa/Turin 4), so a share above 4 MiB per
    CPU is the host's cache, not this process's. On those 2 vCPUs (IG of 3,200 rows, 3
    interleaved repeats, the plan's time over the best of 32..1,024 rows, 12 models: the zoo's,
    resnet_bn, bigru, an LSTM, a TCN, a ViT, a conv + LSTM, a 16-layer MLP, a BN audio Conv1d):
    with 480 MiB 1.22-1.77 on 8 models at one thread and 1.12-1.77 on 6 at two; with the cap
    (and 32 rows per thread) 1.00-1.08 at one thread, 1.00-1.13 at two.

    Examples
    --------
    >>> cache_bytes() > 0
    True
    """
    size, cpus = _reported_cache()
    return min(size, cpus * _LLC_PER_CPU)


@functools.cache
def reported_size() -> int:
    """The last-level cache's bytes as the OS reports it, uncapped (the overhead rule's bound)."""
    return _reported_cache()[0]


def _reported_cache() -> tuple[int, int]:
    """(bytes, CPUs sharing it) of the last-level cache as the OS reports it: sysfs, then
    ``sysconf`` (32 MiB when neither says; the CPU count when sysfs does not name them)."""
    _, size, cpus = _llc_sysfs("/sys/devices/system/cpu/cpu0/cache")
    if size == 0 and hasattr(os, "sysconf"):
        with contextlib.suppress(ValueError, OSError):
            size = int(os.sysconf("SC_LEVEL3_CACHE_SIZE"))
    return (size if size > 0 else _DEFAULT_CACHE), (cpus or os.cpu_count() or 1)


def _llc_sysfs(root: str) -> tuple[int, int, int]:
    """(level, bytes, CPUs sharing it) of the highest-level cache sysfs lists under ``root``;
    zeros where it says nothing readable."""
    best = (0, 0, 0)
    try:
        for entry in sorted(os.listdir(root)):
            with open(f"{root}/{entry}/level") as f:
                level = int(f.read())
            with open(f"{root}/{entry}/size") as f:
                text = f.read().strip().upper()
            unit = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
            size = int(text.rstrip("KMG")) * unit
            best = max(best, (level, size, _count_cpus(f"{root}/{entry}/shared_cpu_list")))
    except (OSError, ValueError):
        pass
    return best


def _count_cpus(path: str) -> int:
    """CPUs in a sysfs CPU list such as ``0-3,8-11`` that this process may run on (all of them
    where the OS does not say); 0 when it cannot be read.

    Examples
    --------
    >>> _count_cpus("/nonexistent")
    0
    """
    try:
        with open(path) as f:
            listed = {cpu for part in f.read().strip().split(",") if part
                      for a, _, b in [part.partition("-")]
                      for cpu in range(int(a), int(b or a) + 1)}
    except (OSError, ValueError):
        return 0
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else listed
    return len(listed & usable) or len(listed)
