"""``data-sufficiency``: would more training data help? Read from a learning curve.

The curve is ``[(n_train, val_score), ...]`` (higher score is better) from training on fractions of
the data; build it with :func:`learning_curve`. Learning curves are close to power laws
(Hestness et al. 2017), i.e. roughly linear in ``log n``, so the gain per *doubling* of the data in
the last segment extrapolates what the next doubling would bring.

A :class:`LearningCurve` (what :func:`zoo.learning_curve` returns) also carries a saturating
power-law fit ``a - b * n**-c`` and its predicted gain from doubling the data; the check then
grades that prediction instead of the last segment (a noisy last segment can rise while the fit
has saturated), against the same ``sufficiency_gain`` (the same unit: score per doubling).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast, overload

import numpy as np

from explain._validation import check_float, check_int
from explain.checks.base import Check, CheckContext, MissingInput, fmt, register_check
from explain.errors import InvalidInputError, InvalidTypeError
from explain.findings import Severity

__all__ = ["DataSufficiency", "learning_curve", "LearningCurve"]


@dataclass(frozen=True)
class LearningCurve(Sequence[tuple[int, float]]):
    """Validation score per training-set size, and the power-law prediction for 2x data.

    A sequence of its ``(n_train, score)`` points, so it goes wherever a learning curve does
    (``explain.audit(learning_curve=...)``, ``explain.diagnose``); the data-sufficiency check
    and section also read its fit.

    Attributes
    ----------
    points : ``(n_train, val_score)`` per training-set size, increasing.
    params : fitted ``(a, b, c)`` of ``a - b * n**-c`` (``None`` when the fit failed).
    predicted_gain, gain_low, gain_high : predicted score gain from doubling the largest
        training set (median over draws of the fit's parameters) and its 90% interval
        (``None`` when the fit has no uncertainty: as many points as parameters).

    Examples
    --------
    >>> c = LearningCurve(((500, 0.9), (1000, 0.91)), (0.92, 1.0, 0.5), 0.004, 0.001, 0.008)
    >>> list(c), c.summary.split(":")[0]
    ([(500, 0.9), (1000, 0.91)], 'Doubling the data is not predicted to help')
    """

    points: tuple[tuple[int, float], ...]
    params: tuple[float, float, float] | None = None
    predicted_gain: float | None = None
    gain_low: float | None = None
    gain_high: float | None = None

    @overload
    def __getitem__(self, i: int) -> tuple[int, float]: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[tuple[int, float]]: ...

    def __getitem__(self, i: int | slice) -> Any:
        return self.points[i]

    def __len__(self) -> int:
        return len(self.points)

    def __iter__(self) -> Iterator[tuple[int, float]]:
        return iter(self.points)

    def helps(self, threshold: float | None = None) -> bool | None:
        """Whether the predicted gain exceeds ``threshold`` (default ``sufficiency_gain``);
        ``None`` without a fit."""
        from explain.checks.thresholds import THRESHOLDS

        t = THRESHOLDS["sufficiency_gain"].default if threshold is None else threshold
        return None if self.predicted_gain is None else self.predicted_gain > t

    @property
    def summary(self) -> str:
        """The prediction in one sentence ("Doubling the data would help: ...")."""
        n, acc = self.points[-1]
        if self.predicted_gain is None:
            return (f"Validation accuracy {acc:.3f} with {n} samples; the power law could not "
                    "be fitted, so no prediction is made.")
        helps = "would help" if self.helps() else "is not predicted to help"
        return (f"Doubling the data {helps}: validation accuracy {acc:.3f} with {n} samples, "
                f"predicted {acc + self.predicted_gain:.3f} with {2 * n} (gain "
                f"{self.predicted_gain:+.3f}, {self.interval}).")

    @property
    def interval(self) -> str:
        """``"90% interval +0.001 to +0.008"`` (or why there is none)."""
        if self.gain_low is None or self.gain_high is None:
            return "no interval: as many points as parameters"
        return f"90% interval {self.gain_low:+.3f} to {self.gain_high:+.3f}"


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
        evidence = {"n_train": [n for n, _ in points], "score": [s for _, s in points],
                    "gain_per_doubling": (s2 - s1) / math.log2(n2 / n1),
                    "slope_per_doubling": slope, "predicted_next": s2 + (s2 - s1) /
                    math.log2(n2 / n1)}
        if isinstance(curve, LearningCurve) and curve.predicted_gain is not None:
            evidence["fit"] = {"params": list(curve.params or ()),
                               "predicted_gain": curve.predicted_gain,
                               "gain_low": curve.gain_low, "gain_high": curve.gain_high}
        return evidence

    def grade(self, evidence: dict[str, Any], context: CheckContext) -> tuple[Severity, str, str]:
        t = context.threshold("sufficiency_gain")
        n, s = int(evidence["n_train"][-1]), evidence["score"][-1]
        if "fit" in evidence:
            return self._grade_fit(evidence["fit"], n, s, t)
        gain = evidence["gain_per_doubling"]
        if gain > t:
            return (Severity.WARN, f"More data would help: the validation score rose "
                    f"{fmt(gain)} per doubling of the training set up to {n} samples "
                    f"(score {fmt(s)}), above {fmt(t)}.",
                    "Collect more data or use data augmentation; until then regularize (L2, "
                    "dropout).")
        return (Severity.PASS, f"The learning curve has flattened: the validation score changed "
                f"{fmt(gain)} per doubling of the training set up to {n} samples (score "
                f"{fmt(s)}), at or below {fmt(t)}.", "")

    @staticmethod
    def _grade_fit(fit: dict[str, Any], n: int, s: float,
                   t: float) -> tuple[Severity, str, str]:
        """Grade the power law's predicted gain from doubling the data (and its interval)."""
        gain, lo, hi = fit["predicted_gain"], fit["gain_low"], fit["gain_high"]
        spread = ("" if lo is None or hi is None else
                  f" (90% interval {lo:+.3f} to {hi:+.3f})")
        said = (f"the power law fitted to the learning curve predicts {gain:+.3f}{spread} from "
                f"doubling the training set beyond {n} samples (score {fmt(s)})")
        if gain > t:
            return (Severity.WARN, f"More data would help: {said}, above {fmt(t)}.",
                    "Collect more data or use data augmentation; until then regularize (L2, "
                    "dropout).")
        return (Severity.PASS, f"The learning curve has flattened: {said}, at or below "
                f"{fmt(t)}.", "")
