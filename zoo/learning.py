"""``zoo.learning_curve``: would more data help this run? (The module is ``zoo.learning`` so
that ``zoo.learning_curve`` stays the function.) Retrain the run's recipe on fractions of its
training data (seeded, class-stratified, same validation split), score each model on the
validation split, and fit a saturating power law ``acc(n) = a - b * n**-c`` (Hestness et al.
2017) with its uncertainty, to predict what doubling the data would bring.

The result is an :class:`explain.checks.data_sufficiency.LearningCurve` (re-exported here): a
sequence of its points that also carries the fit, so ``run.audit(learning_curve=curve)`` puts
the prediction in the report's data-sufficiency section and the check grades it.

The full fraction reuses the run's own model, so the cost is the sum of the smaller fractions
times the original training (0.875x for the default fractions).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
import torch

from explain._core import tensors
from explain._validation import check_float, check_int
from explain.checks.data_sufficiency import LearningCurve
from explain.checks.thresholds import THRESHOLDS
from explain.errors import InvalidInputError
from zoo.data.base import DatasetBundle, TensorPairDataset
from zoo.run import Run

__all__ = ["LearningCurve", "learning_curve", "fit_power_law", "permuted_label_model"]

Progress = Callable[[int, int], None]
#: Predicted gain from doubling the data above which more data "would help": the default of
#: the data-sufficiency check's ``sufficiency_gain`` (2 points of accuracy per doubling).
HELPS = THRESHOLDS["sufficiency_gain"].default


def _power(n: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a - b * np.power(n, -c)


def fit_power_law(points: Sequence[tuple[float, float]], *, seed: int = 0) -> tuple[
        tuple[float, float, float] | None, tuple[float, float | None, float | None] | None]:
    """``(a, b, c)`` and the predicted gain at twice the largest ``n`` (mean, 5%, 95%)."""
    from scipy.optimize import curve_fit

    n = np.array([p[0] for p in points], dtype=float)
    acc = np.array([p[1] for p in points], dtype=float)
    import warnings

    from scipy.optimize import OptimizeWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            params, cov = curve_fit(_power, n, acc, p0=(min(1.0, acc.max() + 0.02), 1.0, 0.5),
                                    bounds=([0.0, 0.0, 0.01], [1.0, np.inf, 3.0]),
                                    maxfev=20_000)
    except (RuntimeError, ValueError):
        return None, None
    top = n.max()
    fitted = (float(params[0]), float(params[1]), float(params[2]))
    if not np.all(np.isfinite(cov)):  # as many points as parameters: no uncertainty
        return fitted, (float(_power(2 * top, *params) - _power(top, *params)), None, None)
    draws = np.random.default_rng(seed).multivariate_normal(
        params, np.nan_to_num(cov, nan=0.0, posinf=0.0), size=2000, check_valid="ignore")
    draws = np.clip(draws, [0.0, 0.0, 0.01], [1.0, np.inf, 3.0])  # the fit's bounds
    gains = _power(2 * top, *draws.T) - _power(top, *draws.T)
    lo, gain, hi = (float(v) for v in np.percentile(gains, [5, 50, 95]))
    return fitted, (gain, lo, hi)


def _subset(bundle: DatasetBundle, fraction: float, seed: int) -> DatasetBundle:
    """``fraction`` of each class of the training split, seeded."""
    x, y = bundle.train.tensors  # type: ignore[attr-defined]
    g = torch.Generator().manual_seed(seed)
    keep = []
    for c in torch.unique(y):
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(idx.numel(), generator=g)]
        keep.append(idx[: max(1, round(fraction * idx.numel()))])
    pick = torch.cat(keep).sort().values
    return dataclasses.replace(bundle, train=TensorPairDataset(x[pick], y[pick]))


def _val_accuracy(model: torch.nn.Module, bundle: DatasetBundle) -> float:
    x, y = bundle.val.tensors  # type: ignore[attr-defined]
    logits = tensors.predict(tensors.eval_copy(model), x, owner="zoo.learning_curve")
    return float((logits.argmax(1) == y).double().mean())


def learning_curve(run: Run, fractions: Sequence[float] = (0.125, 0.25, 0.5, 1.0), *,
                   progress: bool | Progress = True, seed: int = 0) -> LearningCurve:
    """Retrain ``run``'s recipe on ``fractions`` of its training data and fit a power law.

    Parameters
    ----------
    run : a zoo :class:`~zoo.Run` whose data deepscope can reload.
    fractions : increasing fractions in (0, 1]; 1.0 reuses the run's model.
    progress : a tqdm bar (``True``), none (``False``) or ``progress(done, total)``.
    seed : seed of the subsets (each retraining uses the run's own config seed).

    Examples
    --------
    >>> import zoo
    >>> run = zoo.train(preset="mlp-digits", epochs=2, progress=False, monitor=False)
    >>> curve = learning_curve(run, fractions=(0.25, 0.5, 1.0), progress=False)
    >>> [n for n, _ in curve.points]
    [359, 718, 1437]
    """
    bundle = run.dataset
    if bundle is None:
        raise InvalidInputError("zoo.learning_curve needs a run whose data deepscope can "
                                "reload (run.dataset is None). Train it from a zoo dataset.")
    fracs = [cast(float, check_float(f, "fractions", owner="learning_curve", min=0.0,
                                     min_inclusive=False, max=1.0)) for f in fractions]
    if len(fracs) < 3 or any(b <= a for a, b in zip(fracs, fracs[1:])):
        raise InvalidInputError("The 'fractions' parameter of learning_curve must hold 3 or "
                                "more strictly increasing values in (0, 1] (a power law has 3 "
                                f"parameters). Got {tuple(fractions)!r} instead.")
    report = _reporter(progress, len(fracs))
    points = []
    for i, f in enumerate(fracs):
        report(i)
        points.append(_point(run, bundle, f, seed))
    report(len(fracs))
    params, gain = fit_power_law(points, seed=seed)
    return LearningCurve(tuple(points), params, *(gain if gain else (None, None, None)))


def _point(run: Run, bundle: DatasetBundle, fraction: float, seed: int) -> tuple[int, float]:
    from zoo.trainer import train

    if math.isclose(fraction, 1.0):
        return len(bundle.train), _val_accuracy(run.model, bundle)  # type: ignore[arg-type]
    part = _subset(bundle, fraction, seed)
    config = {k: v for k, v in run.config.to_dict().items() if k != "monitor"}
    model = train(run.model_name, part, model_kwargs=dict(run.model_kwargs), progress=False,
                  monitor=False, **config).model
    return len(part.train), _val_accuracy(model, bundle)  # type: ignore[arg-type]


def permuted_label_model(run: Run, *, epochs: int | None = None, seed: int = 0) -> torch.nn.Module:
    """The run's recipe retrained on its training split with the labels permuted (seeded).

    The twin of the data-randomization test (Adebayo et al. 2018, Sec. 4;
    :mod:`explain.quality.data_sanity`): same architecture, optimizer and schedule, but nothing
    it learns relates the inputs to the labels. Early stopping is off (the validation loss of a
    permuted-label model rises from the start, so it would stop it at once).

    Parameters
    ----------
    run : a zoo :class:`~zoo.Run` whose data deepscope can reload.
    epochs : epochs of the retraining; default half the run's (at least 1), so it costs about
        half the original training. Fewer epochs memorize less: the twin is then closer to a
        randomly initialized model, and the test closer to model randomization.
    seed : seed of the permutation (the retraining uses the run's own config seed).

    Examples
    --------
    >>> import zoo
    >>> run = zoo.train(preset="mlp-digits", epochs=2, progress=False, monitor=False)
    >>> twin = permuted_label_model(run, epochs=1)
    >>> type(twin).__name__ == type(run.model).__name__
    True
    """
    from zoo.trainer import train

    bundle = run.dataset
    if bundle is None:
        raise InvalidInputError("zoo.permuted_label_model needs a run whose data deepscope can "
                                "reload (run.dataset is None). Train it from a zoo dataset.")
    config = {k: v for k, v in run.config.to_dict().items() if k != "monitor"}
    config["epochs"] = max(1, int(config["epochs"]) // 2) if epochs is None else int(
        cast(int, check_int(epochs, "epochs", owner="permuted_label_model", min=1)))
    config["early_stopping"] = None
    x, y = bundle.train.tensors  # type: ignore[attr-defined]
    order = torch.randperm(y.numel(), generator=torch.Generator().manual_seed(seed))
    shuffled = dataclasses.replace(bundle, train=TensorPairDataset(x, y[order]))
    return train(run.model_name, shuffled, model_kwargs=dict(run.model_kwargs), progress=False,
                 monitor=False, **config).model.eval()


def _reporter(progress: bool | Progress, total: int) -> Callable[[int], Any]:
    if callable(progress):
        return lambda done: progress(done, total)
    if not progress:
        return lambda done: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="learning curve", unit="fraction")

    def update(done: int) -> None:
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()
    return update
