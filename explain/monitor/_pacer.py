"""Choosing which steps to sample: a fixed interval, or one adapted to an overhead budget."""

from __future__ import annotations

import math
import statistics
from collections import deque

__all__ = ["Pacer"]


class Pacer:
    """Decides the sampled steps and, with ``every=None``, adapts the interval.

    The cost of a sampled step (the monitor's own work: arming hooks, snapshots, statistics in
    hooks and in ``step()``) is measured and compared with the period of unsampled steps (the
    mean over each stretch between two sampled steps; the median over recent stretches); the
    interval is set so that ``sampled cost / (every * period) <= budget`` (in wall-clock and in
    CPU time, whichever is worse), bounded by ``[1, max_every]``. Once an epoch length is
    known, it is also at most ``epoch_length // min_records_per_epoch``, or else at most
    ``epoch_length`` (one record per epoch), if that costs at most 1.5 times the budget.

    The budget holds over the whole run, not only per interval: records taken beyond it (step
    0, the first interval, before any timing is known, and the first ``min_records`` records,
    which come at least once per epoch whatever they cost so that even a short run of a tiny
    model has enough records for the checks) are paid back by waiting longer afterwards: the
    next record is not due before ``records * cost / rate`` steps from the start, ``rate``
    being the budget or the allowed per-epoch rate. Step 0 is always sampled.

    Parameters
    ----------
    every : a fixed interval (steps 0, every, 2 * every, ... are sampled) or None for automatic.
    budget : the target fraction of training time spent on sampled steps (automatic mode).
    max_every : the largest interval chosen automatically.
    min_records_per_epoch : records per epoch kept when they cost at most 1.5 x ``budget``.
    min_records : records taken at least once per epoch, whatever they cost.
    first_every : the interval before any timing is known (automatic mode).
    """

    def __init__(self, every: int | None, *, budget: float = 0.01, max_every: int = 200,
                 min_records_per_epoch: int = 3, min_records: int = 5, first_every: int = 8,
                 start: int = 0) -> None:
        self.fixed = every
        self.budget = budget
        self.max_every = max_every
        self.min_records_per_epoch = min_records_per_epoch
        self.min_records = min_records
        self.every = every if every is not None else min(first_every, max_every)
        self.next_sampled = self.start = start
        # (wall, cpu) seconds: per unsampled step, and the monitor's own cost per sampled step
        self.periods: deque[tuple[float, float]] = deque(maxlen=32)
        self.costs: deque[tuple[float, float]] = deque(maxlen=8)
        self.epoch_length: int | None = None
        self.last_sampled: int | None = None
        self.records = 0

    def is_sampled(self, step: int) -> bool:
        return step == self.next_sampled

    def record_period(self, wall: float, cpu: float | None = None) -> None:
        self.periods.append((wall, wall if cpu is None else cpu))

    def record_cost(self, wall: float, cpu: float | None = None) -> None:
        self.costs.append((wall, wall if cpu is None else cpu))

    def set_epoch_length(self, steps: int, next_step: int) -> None:
        """Remember the length of the last epoch, which bounds the automatic interval.

        An interval chosen before the epoch length was known is shortened at once, so the next
        sampled step is at the latest ``last sampled + every`` (and not before ``next_step``).
        """
        if steps <= 0 or steps == self.epoch_length:  # unchanged: already taken into account
            return
        self.epoch_length = steps
        if self.fixed is None and self.last_sampled is not None:
            self._choose()
            self.next_sampled = max(next_step, min(self.next_sampled,
                                                   self.last_sampled + self.every))

    def relative_cost(self) -> float | None:
        """A sampled step's extra cost as a fraction of an unsampled step.

        The larger of the wall-clock and the CPU-time ratios (CPU time of the training thread):
        waiting for a shared CPU inflates wall periods, which would understate the cost.
        """
        if not self.costs or not self.periods:
            return None
        ratios = []
        for i in (0, 1):
            cost = statistics.median(c[i] for c in self.costs)
            period = statistics.median(p[i] for p in self.periods)
            if period > 0:
                ratios.append(cost / period)
        return max(ratios) if ratios else None

    def estimated_overhead(self) -> float | None:
        """The expected fraction of extra time spent sampling at the current interval."""
        rel = self.relative_cost()
        return None if rel is None else rel / self.every

    def advance(self, step: int) -> None:
        """Called after sampling ``step``: choose the interval and the next sampled step."""
        self.records += 1
        self.last_sampled = step
        self._choose()
        self.next_sampled = step + self.every

    def _choose(self) -> None:
        rel = self.relative_cost()
        if self.fixed is not None or rel is None:
            return
        every = min(max(math.ceil(rel / self.budget), 1), self.max_every)
        forced = False
        if self.epoch_length is not None:
            few = max(1, self.epoch_length // self.min_records_per_epoch)
            if rel / few <= 1.5 * self.budget:
                every = min(every, few)          # a few records per epoch, if affordable
            elif rel / self.epoch_length <= 1.5 * self.budget:
                every = min(every, self.epoch_length)  # else one per epoch, if affordable
            elif self.records < self.min_records:
                every, forced = min(every, self.epoch_length), True
        if not forced and self.last_sampled is not None and rel > 0:
            # pay back earlier records that cost more than this rate allows
            rate = max(self.budget, rel / every)
            due = self.start + math.ceil(self.records * rel / rate)
            every = min(max(every, due - self.last_sampled), self.max_every)
        self.every = int(every)
