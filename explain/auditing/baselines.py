"""Shallow scikit-learn baselines for a deep classifier, on the same train and test splits.

Images and sequences: standardised logistic regression on the flattened input (sequences also
get per-channel mean, std, min and max over time). Text (token ids): TF-IDF over the token ids
(unigrams and bigrams) + logistic regression. Other inputs (tabular): standardised logistic
regression and a histogram gradient-boosting classifier. The deep model's margin over the best
baseline comes with a paired bootstrap 95% interval.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from explain._core import tensors
from explain.auditing.sections.baseline import BaselineScore, ShallowBaselineSection
from explain.card import Modality

__all__ = ["baseline_section", "paired_bootstrap", "shallow_models"]

Features = Callable[[torch.Tensor], Any]


def _flat(x: torch.Tensor) -> np.ndarray:
    return x.double().flatten(1).numpy()


def _pooled(x: torch.Tensor) -> np.ndarray:
    """Flattened sequence [n, T*C] + per-channel mean, std, min, max over time [n, 4C]."""
    x = x.double()
    stats = [x.mean(1), x.std(1), x.amin(1), x.amax(1)]
    return torch.cat([x.flatten(1), *stats], 1).numpy()


def _docs(x: torch.Tensor) -> list[str]:
    return [" ".join(str(t) for t in row if t != 0) for row in x.tolist()]


def _logreg() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=500))


def shallow_models(modality: Modality | None) -> dict[str, tuple[Features, Callable[[], Any]]]:
    """Baseline name -> (input -> features, a fresh scikit-learn estimator) for a modality."""
    if modality == Modality.TEXT:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        def tfidf() -> Any:
            return make_pipeline(TfidfVectorizer(token_pattern=r"\S+", ngram_range=(1, 2),
                                                 sublinear_tf=True),
                                 LogisticRegression(C=4.0, max_iter=1000))
        return {"TF-IDF + logistic regression": (_docs, tfidf)}
    if modality == Modality.IMAGE:
        return {"logistic regression (pixels)": (_flat, _logreg)}
    if modality == Modality.SEQUENCE:
        return {"logistic regression (frames + pooled)": (_pooled, _logreg)}
    from sklearn.ensemble import HistGradientBoostingClassifier

    return {"logistic regression": (_flat, _logreg),
            "gradient boosting": (_flat, lambda: HistGradientBoostingClassifier(random_state=0))}


def _parameters(est: Any) -> int:
    """Learned numbers of a fitted estimator (coefficients + intercepts; tree nodes)."""
    final = est[-1] if hasattr(est, "steps") else est
    if hasattr(final, "coef_"):
        return int(final.coef_.size + np.size(final.intercept_))
    predictors = getattr(final, "_predictors", None)
    if predictors is not None:
        return int(sum(p.nodes.size for row in predictors for p in row))
    return 0


def paired_bootstrap(a: torch.Tensor, b: torch.Tensor, *, n_boot: int = 1000,
                     seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``a - b`` (0/1 correctness per sample) and its 95% percentile interval,
    resampling the samples jointly (paired)."""
    diff = a.double() - b.double()
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, diff.numel(), (n_boot, diff.numel()), generator=g)
    means = diff[idx].mean(1)
    lo, hi = torch.quantile(means, torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    return float(diff.mean()), float(lo), float(hi)


def _deep(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[BaselineScore, Any]:
    t0 = time.perf_counter()
    pred = tensors.predict(model, x, owner="the shallow-baseline check").argmax(1)
    latency = (time.perf_counter() - t0) / x.shape[0] * 1e3
    n_params = sum(p.numel() for p in model.parameters())
    return BaselineScore("deep model", float((pred == y).double().mean()), n_params,
                         latency), pred == y


def baseline_section(model: nn.Module, train: tuple[torch.Tensor, torch.Tensor],
                     test: tuple[torch.Tensor, torch.Tensor], modality: Modality | None, *,
                     max_train: int = 20_000, seed: int = 0) -> ShallowBaselineSection:
    """Fit every baseline of ``modality`` on ``train`` (at most ``max_train`` samples, seeded)
    and compare them with ``model`` on ``test``."""
    (xt, yt), (xs, ys) = train, test
    if xt.shape[0] > max_train:
        keep = torch.randperm(xt.shape[0], generator=torch.Generator().manual_seed(seed))
        xt, yt = xt[keep[:max_train]], yt[keep[:max_train]]
    deep, deep_ok = _deep(model, xs, ys)
    scores, correct = [], {}
    for name, (features, make) in shallow_models(modality).items():
        t0 = time.perf_counter()
        est = make().fit(features(xt), yt.numpy())
        fit = time.perf_counter() - t0
        t1 = time.perf_counter()
        pred = est.predict(features(xs))
        latency = (time.perf_counter() - t1) / xs.shape[0] * 1e3
        correct[name] = torch.from_numpy(np.asarray(pred) == ys.numpy())
        scores.append(BaselineScore(name, float(correct[name].double().mean()),
                                    _parameters(est), latency, fit))
    best = max(scores, key=lambda s: s.accuracy)
    margin, lo, hi = paired_bootstrap(deep_ok, correct[best.name], seed=seed)
    return ShallowBaselineSection(deep=deep, baselines=tuple(scores), best=best.name,
                                  margin=margin, margin_low=lo, margin_high=hi,
                                  n_train=int(xt.shape[0]), n_test=int(xs.shape[0]))
