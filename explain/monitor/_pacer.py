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

    The budget covers all of the monitor's work, not only its records. The first
    ``min_records`` records (what the checks need) are paced by the whole budget; later ones by
    what the every-step tracking leaves of it: the budget less the tracking's cost per step as
    a fraction of a step (timed on the sampled steps, see :meth:`record_tracking`), and never
    less than a quarter of the budget (the share the extra BPTT passes may take), so a run
    whose tracking alone costs the budget still gets records, at that rate.

    The budget holds over the whole run, not only per interval: records taken beyond it (step
    0, the first interval, before any timing is known, and the first ``min_records`` records,
    which come at least once per epoch whatever they cost so that even a short run of a tiny
    model has enough records for the checks) are paid back by waiting longer afterwards: the
    next record is not due before ``cost * (first / rate + later / rate')`` steps from the
    start, ``first`` counting the records up to ``min_records`` and ``later`` the others,
    ``rate`` being the budget (or the allowed per-epoch rate) and ``rate'`` the records' share
    of it (or that per-epoch rate). Step 0 is always sampled.

    Parameters
    ----------
    every : a fixed interval (steps 0, every, 2 * every, ... are sampled) or None for automatic.
    budget : the target fraction of training time spent on the monitor's work (automatic mode):
        the every-step tracking and the sampled steps together.
    max_every : the largest interval chosen automatically.
    min_records_per_epoch : records per epoch kept when they cost at most 1.5 x ``budget``
        (the records' share of it after the first ``min_records``).
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
        if every is not None and start % every:  # a resumed run keeps the grid 0, every, ...
            self.next_sampled = start + every - start % every
        # (wall, cpu) seconds: per unsampled step, and the monitor's own cost per sampled step
        self.periods: deque[tuple[float, float]] = deque(maxlen=32)
        self.costs: deque[tuple[float, float]] = deque(maxlen=8)
        # (wall, cpu) seconds of the every-step tracking per step, measured on sampled steps
        self.tracking: deque[tuple[float, float]] = deque(maxlen=8)
        self.epoch_length: int | None = None
        self.last_sampled: int | None = None
        self.records = 0

    def is_sampled(self, step: int) -> bool:
        return step == self.next_sampled

    def record_period(self, wall: float, cpu: float | None = None) -> None:
        self.periods.append((wall, wall if cpu is None else cpu))

    def record_cost(self, wall: float, cpu: float | None = None) -> None:
        self.costs.append((wall, wall if cpu is None else cpu))

    def record_tracking(self, wall: float, cpu: float | None = None) -> None:
        """The every-step tracking's seconds on one step (timed on a sampled step only, so
        that unsampled steps read no clock)."""
        self.tracking.append((wall, wall if cpu is None else cpu))

    def tracking_share(self) -> float:
        """The every-step tracking's cost as a fraction of an unsampled step (0 if unknown)."""
        return self._ratio(self.tracking) or 0.0

    def records_budget(self) -> float:
        """The part of the budget left to records: the budget less the tracking's share, at
        least a quarter of the budget."""
        return max(self.budget - self.tracking_share(), 0.25 * self.budget)

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
        return self._ratio(self.costs)

    def _ratio(self, costs: deque[tuple[float, float]]) -> float | None:
        if not costs or not self.periods:
            return None
        ratios = []
        for i in (0, 1):
            cost = statistics.median(c[i] for c in costs)
            period = statistics.median(p[i] for p in self.periods)
            if period > 0:
                ratios.append(cost / period)
        return max(ratios) if ratios else None

    def estimated_overhead(self) -> float | None:
        """The expected fraction of extra time spent by the monitor at the current interval:
        sampling, and the every-step tracking."""
        rel = self.relative_cost()
        return None if rel is None else rel / self.every + self.tracking_share()

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
        # the first min_records records are what the checks need: the whole budget; later
        # ones share it with the every-step tracking (and pay back the earlier ones at that rate)
        budget = self.budget if self.records < self.min_records else self.records_budget()
        every = min(max(math.ceil(rel / budget), 1), self.max_every)
        forced = False
        if self.epoch_length is not None:
            few = max(1, self.epoch_length // self.min_records_per_epoch)
            if rel / few <= 1.5 * budget:
                every = min(every, few)          # a few records per epoch, if affordable
            elif rel / self.epoch_length <= 1.5 * budget:
                every = min(every, self.epoch_length)  # else one per epoch, if affordable
            elif self.records < self.min_records:
                every, forced = min(every, self.epoch_length), True
        if not forced and self.last_sampled is not None and rel > 0:
            # pay back earlier records that cost more than this rate allows
            # the first min_records records at the whole budget's rate, later ones at theirs
            first = min(self.records, self.min_records)
            rates = max(self.budget, rel / every), max(budget, rel / every)
            due = self.start + math.ceil(rel * (first / rates[0]
                                                + (self.records - first) / rates[1]))
            every = min(max(every, due - self.last_sampled), self.max_every)
        self.every = int(every)
