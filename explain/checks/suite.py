"""``diagnose``: run the registered checks on a training history, worst finding first."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from explain.checks.base import CHECKS, CheckContext, list_checks
from explain.checks.causal import time_key
from explain.checks.thresholds import validate_thresholds
from explain.errors import InvalidTypeError
from explain.findings import Finding

__all__ = ["diagnose"]


def diagnose(history: Any, model: Any = None, *, checks: Iterable[str] | None = None,
             learning_curve: Sequence[tuple[float, float]] | None = None,
             **thresholds: float) -> list[Finding]:
    """Run the checks on a training history and return their findings, worst first.

    Parameters
    ----------
    history : explain.monitor.History
        The history recorded by :class:`explain.TrainingMonitor` (any object with its attributes).
    model : torch.nn.Module, optional
        The trained model; needed by data-free checks (``spectral``).
    checks : iterable of str, optional
        Check ids to run (default: every registered check, see :func:`list_checks`).
    learning_curve : sequence of (n_train, val_score), optional
        Read by ``data-sufficiency``; build it with :func:`explain.checks.learning_curve`.
    **thresholds : float
        Overrides of the documented thresholds (:mod:`explain.checks.thresholds`).

    Returns
    -------
    list of Finding
        One per check, sorted by severity (ERROR, FAIL, WARN, INFO, PASS, SKIPPED), findings of
        one severity by when they were first seen (``evidence["first_step"]``, then
        ``"first_epoch"``; see :func:`explain.checks.causal_summary`), then registry order. A check
        that does not apply or lacks its inputs returns SKIPPED saying why and what to record,
        never PASS; skipped checks come last.

    Raises
    ------
    UnknownNameError
        An unknown check id or threshold name (the message lists the valid names).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> h = SimpleNamespace(nonfinite={"loss": 0, "grad": 2, "weight": 0, "activation": 0})
    >>> [f.summary for f in diagnose(h, checks=["non-finite"])]
    ['2 non-finite values were recorded: 2 in gradients.']
    """
    values = validate_thresholds(thresholds)
    ids = list_checks() if checks is None else _check_ids(checks)
    context = CheckContext(history=history, model=model, thresholds=values,
                           learning_curve=learning_curve)
    findings = [CHECKS.get(check_id)().run(context) for check_id in ids]
    order = {check_id: i for i, check_id in enumerate(ids)}
    return sorted(findings, key=lambda f: (-f.severity.rank, time_key(f), order[f.check]))


def _check_ids(checks: Iterable[str]) -> list[str]:
    if isinstance(checks, str):
        checks = [checks]
    try:
        ids = list(checks)
    except TypeError:
        raise InvalidTypeError(
            f"The 'checks' parameter of diagnose must be a list of check ids. Got {checks!r} "
            f"({type(checks).__name__}) instead.") from None
    list_checks()
    for check_id in ids:
        CHECKS.get(check_id)  # raises UnknownNameError listing the valid ids
    return list(dict.fromkeys(ids))
