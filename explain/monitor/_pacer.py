"""Choosing which steps to sample: a fixed interval, or one adapted to an overhead budget."""

from __future__ import annotations

import math
import statistics
from collections import deque

__all__ = ["Pacer"]


class Pacer:
    """Decides the sampled steps and, with ``every=None``, adapts the interval.

    The cost of a sampled step (the monitor's own work: arming hooks, snapshots, statistics in
    hooks and in ``step()``) is measured and compared with the median period of unsampled steps;
    the interval is set so that ``sampled cost / (every * period) <= budget``, bounded by
    ``[1, max_every]``. Once an epoch length is known, it is also at most
    ``epoch_length // min_records_per_epoch`` if that costs at most 1.5 times the budget, and at
    most ``epoch_length`` otherwise (one record per epoch, whatever the cost). Step 0 is always
    sampled; the first interval is ``first_every``.

    Parameters
    ----------
    every : a fixed interval (steps 0, every, 2 * every, ... are sampled) or None for automatic.
    budget : the target fraction of training time spent on sampled steps (automatic mode).
    max_every : the largest interval chosen automatically.
    min_records_per_epoch : the automatic interval never leaves fewer records per epoch.
    first_every : the interval before any timing is known (automatic mode).
    """

    def __init__(self, every: int | None, *, budget: float = 0.02, max_every: int = 200,
                 min_records_per_epoch: int = 3, first_every: int = 8, start: int = 0) -> None:
        self.fixed = every
        self.budget = budget
        self.max_every = max_every
        self.min_records_per_epoch = min_records_per_epoch
        self.every = every if every is not None else min(first_every, max_every)
        self.next_sampled = start
        self.periods: deque[float] = deque(maxlen=32)   # seconds per unsampled step
        self.costs: deque[float] = deque(maxlen=8)      # monitor seconds per sampled step
        self.epoch_length: int | None = None

    def is_sampled(self, step: int) -> bool:
        return step == self.next_sampled

    def record_period(self, seconds: float) -> None:
        self.periods.append(seconds)

    def record_cost(self, seconds: float) -> None:
        self.costs.append(seconds)

    def set_epoch_length(self, steps: int) -> None:
        """Remember the length of the last epoch, which bounds the automatic interval."""
        if steps > 0:
            self.epoch_length = steps

    def estimated_overhead(self) -> float | None:
        """The expected fraction of time spent sampling at the current interval."""
        if not self.costs or not self.periods:
            return None
        cost, period = statistics.median(self.costs), statistics.median(self.periods)
        return cost / max(cost + self.every * period, 1e-12)

    def advance(self, step: int) -> None:
        """Called after sampling ``step``: choose the interval and the next sampled step."""
        if self.fixed is None and len(self.costs) >= 1 and len(self.periods) >= 3:
            cost = statistics.median(self.costs)
            period = max(statistics.median(self.periods), 1e-9)
            every = min(max(math.ceil(cost / (self.budget * period)), 1), self.max_every)
            if self.epoch_length is not None:
                few = max(1, self.epoch_length // self.min_records_per_epoch)
                if cost / (few * period) <= 1.5 * self.budget:
                    every = min(every, few)          # a few records per epoch, if affordable
                else:
                    every = min(every, self.epoch_length)  # else at least one per epoch
            self.every = int(every)
        self.next_sampled = step + self.every
