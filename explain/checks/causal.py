"""Cause before effect: order findings by when they were first seen, and say which came first.

Every finding's evidence has ``first_step`` (0-based global step) and ``first_epoch`` (1-based),
None when not known or not tied to a time. Problems that fire together are often one cause and
its effects: a learning rate that makes the loss diverge at step 3 kills ReLUs from then on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from explain.checks.base import Onset
from explain.findings import Finding, Severity

__all__ = ["onset_of", "time_key", "causal_summary"]


def onset_of(finding: Finding) -> Onset:
    """The :class:`~explain.checks.base.Onset` in a finding's evidence."""
    ev = finding.evidence or {}
    step, epoch = ev.get("first_step"), ev.get("first_epoch")
    return Onset(step if isinstance(step, int) else None,
                 epoch if isinstance(epoch, int) else None)


def time_key(finding: Finding) -> tuple[float, float]:
    """A sort key: earlier steps first (epochs when steps are unknown), untimed findings last."""
    when = onset_of(finding)
    return (math.inf if when.step is None else when.step,
            math.inf if when.epoch is None else when.epoch)


def _when(o: Onset) -> str:
    if o.step is not None and o.epoch is not None:
        return f"at step {o.step} (epoch {o.epoch})"
    return f"at step {o.step}" if o.step is not None else f"in epoch {o.epoch}"


def causal_summary(findings: Iterable[Finding]) -> str | None:
    """One sentence on which WARN/FAIL problem came first, or None with fewer than two timed.

    Examples
    --------
    >>> a = Finding("dead-units", Severity.FAIL, "...", {"first_step": 40, "first_epoch": 1})
    >>> b = Finding("unstable-training", Severity.WARN, "...",
    ...             {"first_step": 3, "first_epoch": 1})
    >>> causal_summary([a, b])
    'unstable-training came first, at step 3 (epoch 1); then dead-units at step 40 (epoch 1): the first is the likely cause of what follows.'
    """
    timed = [f for f in findings if f.severity in (Severity.WARN, Severity.FAIL)
             and onset_of(f).known()]
    if len(timed) < 2:
        return None
    timed.sort(key=time_key)
    first, rest = timed[0], timed[1:]
    then = ", ".join(f"{f.check} {_when(onset_of(f))}" for f in rest)
    return (f"{first.check} came first, {_when(onset_of(first))}; then {then}: the first is the "
            "likely cause of what follows.")
