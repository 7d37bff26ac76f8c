"""``spectral``: data-free heavy-tail analysis of each layer's weights (WeightWatcher style).

For every weight matrix W (conv kernels reshaped to ``[out, in * k * k]``) the empirical spectral
density (ESD) of ``W^T W`` -- the squared singular values -- is fitted with a power law
``p(lambda) ~ lambda^-alpha`` above ``xmin``, by maximum likelihood with ``xmin`` chosen to
minimize the Kolmogorov-Smirnov distance (Clauset, Shalizi & Newman 2009; the estimator
WeightWatcher uses through the ``powerlaw`` package, which is not a dependency here).
Heavy-tailed self-regularization (Martin & Mahoney 2021) reads alpha < 2 as over-trained,
2 <= alpha <= 6 as well trained and alpha > 6 as barely trained (close to random).

That reading was established on large layers. A WARN here needs a fit that can carry it: a tail
of at least ``spectral_min_tail`` (50) eigenvalues and an alpha significantly below
``alpha_low`` at the one-sided 95% level, both by the standard error of the maximum-likelihood
estimate, ``(alpha - 1) / sqrt(n_tail)`` (1.645 of them), and by a nonparametric bootstrap
(fewer than 5% of :data:`BOOTSTRAP_RESAMPLES` resampled spectra, each refitted with its own
``xmin``, fit ``alpha >= alpha_low``). Clauset, Shalizi & Newman (2009, sec. 3.5) give the
standard error for a *known* ``xmin`` and recommend the bootstrap for the uncertainty when
``xmin`` is estimated from the data, as here; in a small layer that uncertainty dominates: a
256 x 64 input layer (64 eigenvalues) whose tail of 51 reaches down into the random bulk of its
initialisation fit alpha 1.79 +- 0.11 by the formula, but 9% of its resamples fit alpha >= 2.
Small layers (a 64 x 64 matrix has 64 eigenvalues; random ones fit alpha anywhere in 2.3-6.5)
with a low alpha are reported as INFO.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from explain.checks.base import Check, CheckContext, MissingInput, fmt, register_check
from explain.findings import Severity

__all__ = ["Spectral", "powerlaw_alpha", "bootstrap_share", "weight_matrices", "BOOTSTRAP_RESAMPLES"]

_MIN_TAIL = 5  # fewest eigenvalues a tail fit may use
#: resampled spectra of the bootstrap test (seeded: the same verdict every time)
BOOTSTRAP_RESAMPLES = 200
_LEVEL = 0.05  # one-sided, as the 1.645 standard errors


def powerlaw_alpha(evals: np.ndarray, min_tail: int = _MIN_TAIL) -> dict[str, float] | None:
    """Fit ``p(x) ~ x^-alpha`` for ``x >= xmin`` by MLE, ``xmin`` minimizing the KS distance.

    Parameters
    ----------
    evals : positive eigenvalues (any order).
    min_tail : smallest number of eigenvalues in the fitted tail.

    Returns
    -------
    dict or None
        ``{"alpha", "xmin", "ks", "n_tail"}``; ``None`` when there are too few positive values.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = (1 - rng.random(5000)) ** (-1 / 1.5)   # Pareto tail, density exponent 2.5
    >>> round(powerlaw_alpha(x)["alpha"], 1)
    2.5
    """
    x = np.sort(np.asarray(evals, dtype=np.float64))
    x = x[np.isfinite(x) & (x > 0)]
    n = len(x)
    if n < min_tail:
        return None
    best: dict[str, float] | None = None
    logs = np.log(x)
    suffix = np.cumsum(logs[::-1])[::-1]  # suffix[i] = sum(log x[i:])
    # every candidate xmin up to 500, then 500 evenly spaced ones: O(500 n) for big layers
    candidates = np.unique(np.linspace(0, n - min_tail, min(n - min_tail + 1, 500)).astype(int))
    for i in candidates:
        xmin, m = x[i], n - i
        denom = suffix[i] - m * logs[i]
        if denom <= 0:
            continue
        alpha = 1.0 + m / denom
        tail = x[i:]
        model = 1.0 - (tail / xmin) ** (1.0 - alpha)
        emp_hi = np.arange(1, m + 1) / m
        ks = float(max(np.max(np.abs(emp_hi - model)), np.max(np.abs(emp_hi - 1 / m - model))))
        if best is None or ks < best["ks"]:
            best = {"alpha": float(alpha), "xmin": float(xmin), "ks": ks, "n_tail": float(m)}
    return best


def bootstrap_share(evals: np.ndarray, low: float, resamples: int = BOOTSTRAP_RESAMPLES,
                    seed: int = 0) -> float:
    """The share of resampled spectra (with replacement, refitted with their own ``xmin``)
    whose fitted alpha is ``>= low``: a one-sided bootstrap p-value of "alpha < low".

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = (1 - rng.random(300)) ** (-1 / 0.6)   # density exponent 1.6
    >>> bootstrap_share(x, 2.0, resamples=50)
    0.0
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(evals, dtype=np.float64)
    hits = 0
    for _ in range(resamples):
        fit = powerlaw_alpha(rng.choice(x, size=len(x), replace=True))
        hits += fit is None or fit["alpha"] >= low
    return hits / resamples


def weight_matrices(model: Any) -> dict[str, np.ndarray]:
    """``{parameter name: 2-D float64 array}`` for every weight with 2+ dimensions.

    Embedding tables are left out (their rows are looked up, not multiplied).
    """
    import torch

    skip = {f"{name}.weight" for name, m in model.named_modules()
            if isinstance(m, (torch.nn.Embedding, torch.nn.EmbeddingBag))}
    out = {}
    for name, p in model.named_parameters():
        if p.ndim >= 2 and "weight" in name.rsplit(".", 1)[-1] and name not in skip:
            out[name] = p.detach().reshape(p.shape[0], -1).double().cpu().numpy()
    return out


@register_check("spectral")
class Spectral(Check):
    """Power-law exponent of each weight matrix's eigenvalue spectrum."""

    title = "Spectral (heavy-tail) analysis"
    thresholds = ("alpha_low", "alpha_high", "spectral_min_evals", "spectral_min_tail")

    def compute(self, context: CheckContext) -> dict[str, Any]:
        if context.model is None:
            raise MissingInput(
                "The spectral check needs the trained model; none was given.",
                "Call explain.diagnose(history, model=model); it reads only the weights, no "
                "data.")
        min_evals = int(context.threshold("spectral_min_evals"))
        low, min_tail = context.threshold("alpha_low"), int(context.threshold("spectral_min_tail"))
        rows: dict[str, dict[str, Any]] = {}
        for name, w in weight_matrices(context.model).items():
            if min(w.shape) < min_evals or not np.all(np.isfinite(w)):
                continue
            evals = np.linalg.svd(w, compute_uv=False) ** 2
            fit = powerlaw_alpha(evals)
            if fit is not None:
                # the bootstrap only where the formula already says "significantly low"
                candidate = fit["n_tail"] >= min_tail and \
                    fit["alpha"] + 1.645 * (fit["alpha"] - 1) / np.sqrt(fit["n_tail"]) < low
                rows[name] = {**fit, "num_evals": int(len(evals)),
                              "boot_share": bootstrap_share(evals, low) if candidate else None,
                              "esd": sorted(evals.tolist(), reverse=True)[:2000]}
        if not rows:
            raise MissingInput(
                f"The spectral check found no weight matrix with >= {min_evals} eigenvalues "
                "(min of its two dimensions).",
                "Nothing to fit for very small layers; lower spectral_min_evals to force it.")
        return {"layers": list(rows), "alpha": [r["alpha"] for r in rows.values()],
                "alpha_se": [(r["alpha"] - 1) / np.sqrt(r["n_tail"]) for r in rows.values()],
                "n_tail": [int(r["n_tail"]) for r in rows.values()],
                "xmin": [r["xmin"] for r in rows.values()],
                "ks": [r["ks"] for r in rows.values()],
                "alpha_boot_share": [r["boot_share"] for r in rows.values()],
                "num_evals": [r["num_evals"] for r in rows.values()],
                "esd": {k: r["esd"] for k, r in rows.items()},
                "mean_alpha": float(np.mean([r["alpha"] for r in rows.values()]))}

    def grade(self, evidence: dict[str, Any], context: CheckContext) -> tuple[Severity, str, str]:
        low, high = context.threshold("alpha_low"), context.threshold("alpha_high")
        min_tail = int(context.threshold("spectral_min_tail"))
        alphas = dict(zip(evidence["layers"], evidence["alpha"]))
        fits = dict(zip(evidence["layers"], zip(evidence["n_tail"], evidence["alpha_se"])))
        boot = dict(zip(evidence["layers"], evidence.get("alpha_boot_share") or []))
        n = len(alphas)
        low_layers = [k for k, a in alphas.items() if a < low]
        over = [k for k in low_layers  # a long enough tail, significantly below alpha_low
                if fits[k][0] >= min_tail and alphas[k] + 1.645 * fits[k][1] < low
                and (boot.get(k) is None or boot[k] < _LEVEL)]
        under = [k for k, a in alphas.items() if a > high]
        mean = fmt(evidence["mean_alpha"])
        remedy = ("Regularize those layers (L2 weight decay, dropout), use early stopping, or get "
                  "more data.")
        if over:
            worst = min(over, key=lambda n: alphas[n])
            return (Severity.WARN, f"{len(over)} of {n} layers have a very heavy-tailed spectrum "
                    f"(alpha < {fmt(low)}; lowest {worst} at {fmt(alphas[worst])} from a tail of "
                    f"{fits[worst][0]} eigenvalues, mean {mean}): over-trained.", remedy)
        doubtful = [k for k in low_layers if boot.get(k) is not None]  # the formula alone
        if doubtful:
            worst = min(doubtful, key=lambda n: alphas[n])
            return (Severity.INFO, f"{len(low_layers)} of {n} layers have alpha < {fmt(low)} "
                    f"(lowest with a {min_tail}+ tail: {worst} at {fmt(alphas[worst])} from "
                    f"{fits[worst][0]} eigenvalues, mean {mean}), but {fmt(100 * boot[worst])}% "
                    f"of bootstrap resamples fit alpha >= {fmt(low)} (a verdict needs < "
                    f"{fmt(100 * _LEVEL)}%): possibly over-trained.",
                    "The exponent is uncertain once its xmin is refitted; compare with the "
                    "train/validation gap (overfitting check) before acting. " + remedy)
        if low_layers:
            worst = min(low_layers, key=lambda n: alphas[n])
            return (Severity.INFO, f"{len(low_layers)} of {n} layers have alpha < {fmt(low)} "
                    f"(lowest {worst} at {fmt(alphas[worst])} from a tail of {fits[worst][0]} "
                    f"eigenvalues, mean {mean}), but no fit has the {min_tail}+ eigenvalues "
                    f"and the margin a verdict needs: possibly over-trained.",
                    "Small layers give noisy exponents; compare with the train/validation gap "
                    "(overfitting check) before acting. " + remedy)
        if 2 * len(under) > n:
            return (Severity.INFO, f"{len(under)} of {n} layers have alpha > {fmt(high)} "
                    f"(mean {mean}): their spectra are close to random, so they are barely "
                    "trained.",
                    "Train longer or with Adam; if accuracy is fine the layers may simply be "
                    "wider than needed.")
        return (Severity.PASS, f"All {n} layers have alpha >= {fmt(low)} (mean {mean}); "
                f"{n - len(under)} of {n} lie in the well-trained range [{fmt(low)}, {fmt(high)}].", "")
