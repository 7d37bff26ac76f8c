"""``data-sufficiency``: would more training data help? Read from a learning curve.

The curve is ``[(n_train, val_score), ...]`` (higher score is better) from training on fractions of
the data; build it with :func:`learning_curve`. Learning curves are close to power laws
(Hestness et al. 2017), i.e. roughly linear in ``log n``, so the gain per *doubling* of the data in
the last segment extrapolates what the next doubling would bring.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np

from explain._validation import check_float, check_int
from explain.checks.base import Check, CheckContext, MissingInput, fmt, register_check
from explain.errors import InvalidInputError, InvalidTypeError
from explain.findings import Severity

__all__ = ["DataSufficiency", "learning_curve"]


def learning_curve(fit_and_score: Callable[[float], float],
                   fractions: Sequence[float] = (0.25, 0.5, 1.0), *,
                   n_total: int) -> list[tuple[int, float]]:
    """Train on growing fractions of the data and return ``[(n_train, val_score), ...]``.

    Parameters
    ----------
    fit_and_score : callable
        ``fit_and_score(fraction) -> score``: trains a fresh model on ``fraction`` of the training
        set and returns its validation score (higher is better, e.g. accuracy).
    fractions : increasing fractions in (0, 1].
    n_total : size of the full training set.

    Returns
    -------
    list of (int, float)
        One point per fraction, for ``explain.diagnose(..., learning_curve=...)``.

    Examples
    --------
    >>> learning_curve(lambda f: 0.5 + 0.1 * f, fractions=(0.5, 1.0), n_total=100)
    [(50, 0.55), (100, 0.6)]
    """
    if not callable(fit_and_score):
        raise InvalidTypeError(
            "The 'fit_and_score' parameter of learning_curve must be a callable "
            f"fraction -> score. Got {fit_and_score!r} ({type(fit_and_score).__name__}) instead.")
    n_total = check_int(n_total, "n_total", owner="learning_curve", min=1)
    fracs = [cast(float, check_float(f, "fractions", owner="learning_curve", min=0.0,
                                     min_inclusive=False, max=1.0)) for f in fractions]
    if len(fracs) < 2 or any(b <= a for a, b in zip(fracs, fracs[1:])):
        raise InvalidInputError(
            "The 'fractions' parameter of learning_curve must hold 2 or more strictly increasing "
            f"values in (0, 1]. Got {tuple(fractions)!r} instead.")
    curve = []
    for f in fracs:
        score = cast(float, check_float(fit_and_score(f), "score returned by fit_and_score",
                                        owner="learning_curve"))
        curve.append((max(1, round(f * n_total)), score))
    return curve


@register_check("data-sufficiency")
class DataSufficiency(Check):
    """Gain of the validation score per doubling of the training data, from a learning curve."""

    title = "Data sufficiency"
    thresholds = ("sufficiency_gain",)

    def compute(self, context: CheckContext) -> dict[str, Any]:
        curve = context.learning_curve
        if not curve:
            raise MissingInput(
                "The data-sufficiency check needs a learning curve (validation score at several "
                "training-set sizes); none was given.",
                "Build one with explain.checks.learning_curve(fit_and_score, fractions=(0.25, "
                "0.5, 1.0), n_total=len(train_set)) and pass it as diagnose(..., "
                "learning_curve=curve).")
        points = sorted((float(n), float(s)) for n, s in curve
                        if math.isfinite(float(n)) and float(n) > 0 and math.isfinite(float(s)))
        sizes = sorted({n for n, _ in points})
        if len(sizes) < 2:
            raise MissingInput(
                f"The data-sufficiency check needs 2 or more training-set sizes; the curve has "
                f"{len(sizes)}.",
                "Use at least two fractions in explain.checks.learning_curve (e.g. 0.5 and 1.0).")
        (n1, s1), (n2, s2) = points[-2], points[-1]
        logs = np.log2([n for n, _ in points])
        slope = float(np.polyfit(logs, [s for _, s in points], 1)[0])
        return {"n_train": [n for n, _ in points], "score": [s for _, s in points],
                "gain_per_doubling": (s2 - s1) / math.log2(n2 / n1),
                "slope_per_doubling": slope, "predicted_next": s2 + (s2 - s1) /
                math.log2(n2 / n1)}

    def grade(self, evidence: dict[str, Any], context: CheckContext) -> tuple[Severity, str, str]:
        gain, t = evidence["gain_per_doubling"], context.threshold("sufficiency_gain")
        n, s = int(evidence["n_train"][-1]), evidence["score"][-1]
        if gain > t:
            return (Severity.WARN, f"More data would help: the validation score rose "
                    f"{fmt(gain)} per doubling of the training set up to {n} samples "
                    f"(score {fmt(s)}), above {fmt(t)}.",
                    "Collect more data or use data augmentation; until then regularize (L2, "
                    "dropout).")
        return (Severity.PASS, f"The learning curve has flattened: the validation score changed "
                f"{fmt(gain)} per doubling of the training set up to {n} samples (score "
                f"{fmt(s)}), at or below {fmt(t)}.", "")
