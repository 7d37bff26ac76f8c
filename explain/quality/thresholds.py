"""Every threshold of the trust verdict, with its default, its meaning and the anchor behind it.

A threshold is overridden per call, like the checks' thresholds
(:mod:`explain.checks.thresholds`): ``explain.evaluate(model, x, attr, max_sensitivity=0.5)``.
Names and values are validated in one place (:func:`validate_thresholds`).

How the thresholds add up to a verdict: ``fails-sanity`` when the sanity correlation is above
``max_sanity_correlation`` (or, when a permuted-label model was given, the data-randomization
correlation above ``max_data_sanity_correlation``); else ``doubtful`` when any graded criterion (completeness, deletion,
insertion, sensitivity) fails or a graded metric could not run; else ``trustworthy``. Infidelity
is reported, not graded: it is in squared logit units (normalized, Yeh et al. 2019), so compare
methods on the same model rather than against a fixed number.

Examples
--------
>>> THRESHOLDS["max_completeness_error"].default
0.05
>>> validate_thresholds({"max_sensitivity": 0.5})["max_sensitivity"]
0.5
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from explain._validation import check_float, unknown_name

__all__ = ["TrustThreshold", "THRESHOLDS", "DEFAULT_THRESHOLDS", "defaults",
           "validate_thresholds"]


@dataclass(frozen=True)
class TrustThreshold:
    """One documented threshold of the trust verdict.

    Attributes
    ----------
    name : keyword accepted by :func:`explain.evaluate`.
    default : the value used when the caller gives none.
    metric : the trust metric that reads it.
    meaning : what the number means, in one sentence.
    anchor : where the default comes from (a paper, a convention, a measurement here).
    minimum, maximum : the valid range (``None``: unbounded), both inclusive.
    """

    name: str
    default: float
    metric: str
    meaning: str
    anchor: str
    minimum: float | None = 0
    maximum: float | None = None

    def validate(self, value: Any, *, owner: str = "evaluate") -> float:
        """``value`` as a float in range, or a typed error naming the threshold."""
        return cast(float, check_float(value, self.name, owner=owner, min=self.minimum,
                                       max=self.maximum))


_T = TrustThreshold

#: Every threshold of the verdict, by name, in the order of the metrics that read them.
THRESHOLDS: dict[str, TrustThreshold] = {t.name: t for t in [
    _T("max_completeness_error", 0.05, "completeness",
       "Largest median of |sum(attr) - (f(x) - f(b))| / |f(x) - f(b)| (logit of the explained "
       "class) for a path or Shapley method; above it the map does not account for the "
       "prediction: too few steps (raise n_steps) or a baseline/target mismatch.",
       "Sundararajan et al. 2017 (Integrated Gradients, Sec. 3): 'between 20 and 300 steps are "
       "enough to approximate the integral (within 5%)'; captum's convergence_delta checks the "
       "same sum. Exact IG on a linear model measures < 1e-5 here."),
    _T("min_faithfulness_margin", 0.0, "faithfulness",
       "Margin by which the deletion AUC must lie below, and the insertion AUC above, the AUC of "
       "the same curve in random order (class probability over the fraction of units changed, "
       "in [0, 1]); a map that does not beat random order ranks evidence no better than "
       "guessing.",
       "Petsiuk et al. 2018 (RISE: deletion and insertion metrics); Hooker et al. 2019 (ROAR) "
       "take a random ranking as the reference every attribution must beat. 0 = strictly "
       "better than chance.", minimum=None),
    _T("max_sanity_correlation", 0.5, "sanity",
       "Largest median Spearman rank correlation between the original map and the map of the "
       "fully randomized model (cascading randomization, output layer first); a map that stays "
       "more correlated reflects the input, not the model.",
       "Adebayo et al. 2018 ('Sanity Checks for Saliency Maps'): maps of methods that pass "
       "decorrelate towards 0, guided backprop's stay close to the original. 0.5 is Cohen's "
       "(1988) 'large' correlation. Measured here: IG and saliency on a trained MLP < 0.5; a "
       "map equal to the input (an edge detector) stays at 1.0.", minimum=-1, maximum=1),
    _T("max_data_sanity_correlation", 0.5, "data_sanity",
       "Largest median Spearman rank correlation between the original map and the map, for the "
       "same inputs and classes, of the same architecture trained on permuted labels; a map that "
       "stays more correlated does not depend on the relation between inputs and labels the "
       "model learned.",
       "Adebayo et al. 2018 ('Sanity Checks for Saliency Maps', Sec. 4, data randomization "
       "test): maps of methods that pass change when the labels are permuted, as they do when "
       "the weights are. The same criterion (the map must change) and so the same bound as "
       "max_sanity_correlation: Cohen's (1988) 'large' correlation, 0.5. Measured here: saliency "
       "on an MLP trained on separable data against its permuted-label twin < 0.5; the model "
       "against itself 1.0.", minimum=-1, maximum=1),
    _T("max_sensitivity", 1.0, "sensitivity",
       "Largest median max-sensitivity, max ||e(x + u) - e(x)|| / ||e(x)|| over uniform noise u "
       "of sensitivity_radius x the input's spread; above 1 the map changes by more than its "
       "own size under a perturbation the model barely notices: it is unstable.",
       "Yeh et al. 2019 (max-sensitivity, captum.metrics.sensitivity_max); normalized by the "
       "map's norm so that 1.0 means 'as large as the explanation itself'."),
]}

#: ``{name: default}`` of every threshold (the names ``Quality.thresholds`` holds).
DEFAULT_THRESHOLDS: dict[str, float] = {name: t.default for name, t in THRESHOLDS.items()}


def defaults() -> dict[str, float]:
    """Return a fresh ``{name: default}`` for every threshold."""
    return dict(DEFAULT_THRESHOLDS)


def validate_thresholds(overrides: Mapping[str, Any], *,
                        owner: str = "evaluate") -> dict[str, float]:
    """Return every threshold's value, ``overrides`` applied and validated.

    Raises
    ------
    UnknownNameError
        A name that is not a threshold; the message lists the closest valid names.
    InvalidInputError, InvalidTypeError
        A value of the wrong type or out of range.
    """
    values = defaults()
    for name, value in overrides.items():
        if name not in THRESHOLDS:
            raise unknown_name("trust threshold", name, THRESHOLDS)
        values[name] = THRESHOLDS[name].validate(value, owner=owner)
    return values
