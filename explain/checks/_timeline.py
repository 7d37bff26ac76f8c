"""Where in a run a finding lies: :class:`Onset`, the epoch of a step and the first step of an
epoch (from ``history.meta["epoch_end_steps"]``), the first flagged step, and what the monitor
tracked after its last record. Re-exported by :mod:`explain.checks.base`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Onset", "epoch_of_step", "first_step_of_epoch", "first_step_where", "between_tail"]


@dataclass(frozen=True)
class Onset:
    """When a finding was first seen: a 0-based global ``step`` and a 1-based ``epoch``
    (None when the history cannot say, or the finding is not tied to a time)."""

    step: int | None = None
    epoch: int | None = None

    def known(self) -> bool:
        """Whether the step or the epoch is known."""
        return self.step is not None or self.epoch is not None


def _epoch_ends(history: Any) -> list[int]:
    """The global step count at each ``log_epoch`` (recorded by the monitor), or ``[]`` when
    they are not there for every logged epoch."""
    meta = getattr(history, "meta", None) or {}
    ends = meta.get("epoch_end_steps")
    n = len((getattr(history, "epochs", None) or {}).get("epoch") or [])
    if not isinstance(ends, list) or len(ends) != n:
        return []
    return [int(e) for e in ends]


def epoch_of_step(history: Any, step: int | None) -> int | None:
    """The 1-based epoch a global step belongs to.

    Read from the step counts the monitor recorded at each epoch's end
    (``meta["epoch_end_steps"]``); without them, epochs are assumed to have equal length
    (``meta["total_steps"]`` over the number of logged epochs). None when neither is known.
    """
    if step is None:
        return None
    epochs = getattr(history, "epochs", None) or {}
    numbers = list(epochs.get("epoch") or [])
    ends = _epoch_ends(history)
    if ends:
        for i, end in enumerate(ends):
            if step < end:
                return int(numbers[i]) if i < len(numbers) and numbers[i] is not None else i + 1
        return None
    meta = getattr(history, "meta", None) or {}
    total, n = meta.get("total_steps"), len(numbers)
    if not isinstance(total, int) or total <= 0 or n == 0 or step >= total:
        return None
    return int(step * n // total) + 1


def first_step_of_epoch(history: Any, epoch: int | None) -> int | None:
    """The first global step of a 1-based epoch (None when the history cannot say)."""
    if epoch is None:
        return None
    ends = _epoch_ends(history)
    if ends and 1 <= epoch <= len(ends):
        return 0 if epoch == 1 else ends[epoch - 2]
    meta = getattr(history, "meta", None) or {}
    n = len((getattr(history, "epochs", None) or {}).get("epoch") or [])
    total = meta.get("total_steps")
    if ends or not isinstance(total, int) or total <= 0 or not 1 <= epoch <= n:
        return None
    return (epoch - 1) * total // n


def between_tail(history: Any) -> dict[str, Any] | None:
    """What the monitor tracked on the steps after the last record
    (``history.meta["between_tail"]``: the ``between`` keys and ``"step"``), or None."""
    meta = getattr(history, "meta", None) or {}
    tail = meta.get("between_tail")
    return tail if isinstance(tail, dict) and isinstance(tail.get("step"), int) else None


def first_step_where(steps: Sequence[Any], flags: Iterable[bool], *,
                     sustained: bool = False) -> int | None:
    """The step of the first true flag; with ``sustained``, the first from which every later
    flag is true too (the onset of a state that lasted to the end)."""
    flags = list(flags)
    idx = None
    if sustained:
        for i in range(len(flags) - 1, -1, -1):
            if not flags[i]:
                break
            idx = i
    else:
        idx = next((i for i, f in enumerate(flags) if f), None)
    if idx is None or idx >= len(steps):
        return None
    return int(steps[idx])
