"""``explain.drift``: does the model see the current data as it saw the reference data?

Three two-sample tests on what the model computes, not on raw inputs (so they work for any
modality): the top-class confidence (Kolmogorov-Smirnov), the predicted-class mix (chi-square
on a 2 x classes table) and the penultimate-layer representations (the input of the last
``nn.Linear``; maximum mean discrepancy with an RBF kernel whose bandwidth is the median
pairwise distance, p-value by permutation; Gretton et al. 2012). The three p-values are
Holm-adjusted, so the chance of a false alarm stays at or below ``alpha`` when nothing shifted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from explain._core import tensors
from explain._validation import check_float, check_int
from explain.auditing import _data
from explain.auditing.sections.shift import ClassShift, DistributionShiftSection, ShiftTest
from explain.errors import DataMismatchError, InvalidTypeError
from explain.findings import Finding

__all__ = ["drift", "outputs_and_features", "shift_section", "holm", "mmd_test"]

_OWNER = "explain.drift"


@torch.no_grad()
def outputs_and_features(model: nn.Module, x: torch.Tensor,
                         batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``[n, classes]`` and penultimate features ``[n, d]`` (the input of the model's
    last ``nn.Linear``; the logits themselves when it has none)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        logits = tensors.predict(model, x, batch_size, owner=_OWNER)
        return logits, logits
    seen: list[torch.Tensor] = []
    handle = linears[-1].register_forward_pre_hook(
        lambda _m, args: seen.append(args[0].detach().float().flatten(1).cpu()))
    try:
        logits = tensors.predict(model, x, batch_size, owner=_OWNER)
    finally:
        handle.remove()
    feats = torch.cat(seen) if seen else logits
    return logits, feats if feats.shape[0] == logits.shape[0] else logits


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (reject ``H_i`` at level alpha when ``adjusted_i <= alpha``).

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = round(running, 12)
    return adjusted


def mmd_test(fx: torch.Tensor, fy: torch.Tensor, *, n_permutations: int = 200,
             seed: int = 0) -> tuple[float, float, float]:
    """Biased MMD^2 (RBF kernel, median-heuristic bandwidth), its permutation p-value and the
    bandwidth. ``p = (1 + #{permuted >= observed}) / (1 + n_permutations)``."""
    z = torch.cat([fx, fy]).double()
    d2 = torch.cdist(z, z).pow(2)
    off = d2[~torch.eye(len(z), dtype=torch.bool)]
    sigma2 = float(off.median()) if off.numel() else 1.0
    sigma2 = sigma2 if sigma2 > 0 else 1.0
    k = torch.exp(-d2 / (2 * sigma2))
    nx, n = fx.shape[0], z.shape[0]
    base = torch.cat([torch.full((nx,), 1.0 / nx), torch.full((n - nx,), -1.0 / (n - nx))])
    g = torch.Generator().manual_seed(seed)
    perms = torch.stack([torch.randperm(n, generator=g) for _ in range(n_permutations)])
    w = torch.cat([base[None].double(), base.double()[perms]])  # [1 + P, n]
    stats = ((w @ k) * w).sum(1)
    observed = float(stats[0])
    p = (1 + int((stats[1:] >= observed - 1e-12).sum())) / (1 + n_permutations)
    return observed, p, sigma2 ** 0.5


def _class_mix(pred_ref: torch.Tensor, pred_cur: torch.Tensor,
               names: Sequence[str]) -> tuple[float, float, list[ClassShift]]:
    from scipy.stats import chi2_contingency

    k = len(names)
    table = np.stack([np.bincount(pred_ref.numpy(), minlength=k),
                      np.bincount(pred_cur.numpy(), minlength=k)]).astype(float)
    used = table.sum(0) > 0
    shares = table / table.sum(1, keepdims=True)
    if used.sum() < 2:
        stat, p, resid = 0.0, 1.0, np.zeros(k)
    else:
        stat, p, _, expected = chi2_contingency(table[:, used], correction=False)
        n, rows, cols = table.sum(), table[:, used].sum(1), table[:, used].sum(0)
        adj = np.sqrt(expected * np.outer(1 - rows / n, 1 - cols / n))
        resid = np.zeros(k)
        resid[used] = (table[1, used] - expected[1]) / adj[1]
    classes = [ClassShift(str(names[c]), float(shares[0, c]), float(shares[1, c]),
                          float(resid[c])) for c in range(k)]
    classes.sort(key=lambda c: -abs(c.residual))
    return float(stat), float(p), classes


def _histogram(conf: torch.Tensor, edges: np.ndarray) -> tuple[float, ...]:
    counts = np.histogram(conf.numpy(), bins=edges)[0]
    return tuple(float(c) for c in counts / max(1, counts.sum()))


def shift_section(reference: tuple[torch.Tensor, torch.Tensor],
                  current: tuple[torch.Tensor, torch.Tensor], class_names: Sequence[str], *,
                  n_permutations: int = 200, seed: int = 0, reference_name: str = "reference",
                  current_name: str = "current") -> DistributionShiftSection:
    """The three tests on ``(logits, features)`` of the reference and current data."""
    from scipy.stats import ks_2samp

    (lr, fr), (lc, fc) = reference, current
    if lr.shape[1] != lc.shape[1] or fr.shape[1] != fc.shape[1]:
        raise DataMismatchError(f"drift: reference and current outputs differ in shape "
                                f"({list(lr.shape[1:])} vs {list(lc.shape[1:])}).")
    cr, pr = torch.softmax(lr.double(), 1).max(1)
    cc, pc = torch.softmax(lc.double(), 1).max(1)
    ks = ks_2samp(cr.numpy(), cc.numpy())
    chi, p_chi, classes = _class_mix(pr, pc, class_names)
    mmd, p_mmd, bw = mmd_test(fr, fc, n_permutations=n_permutations, seed=seed)
    raw = [float(ks.pvalue), p_chi, p_mmd]
    adj = holm(raw)
    tests = (ShiftTest("confidence", float(ks.statistic), raw[0], adj[0], "Kolmogorov-Smirnov"),
             ShiftTest("class mix", chi, raw[1], adj[1], "chi-square"),
             ShiftTest("representation", mmd, raw[2], adj[2],
                       f"MMD^2, RBF bandwidth {bw:.3g}, {n_permutations} permutations"))
    edges = np.linspace(0, 1, 21)
    return DistributionShiftSection(
        reference=reference_name, current=current_name, n_reference=int(lr.shape[0]),
        n_current=int(lc.shape[0]), tests=tests, classes=tuple(classes),
        confidence_edges=tuple(float(e) for e in edges),
        confidence_reference=_histogram(cr, edges), confidence_current=_histogram(cc, edges),
        mean_confidence_reference=float(cr.mean()), mean_confidence_current=float(cc.mean()))


def _sample(data: Any, n: int, seed: int, what: str) -> torch.Tensor:
    x, _ = _data.collect(data, 10**9)
    if x.shape[0] > n:
        x = x[torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))[:n]]
    return x


def drift(model: nn.Module, reference: Any, current: Any, *, max_samples: int = 500,
          n_permutations: int = 200, seed: int = 0, class_names: Sequence[str] | None = None,
          alpha: float = 0.05) -> Finding:
    """Test whether ``current`` data shifted away from ``reference`` data, as the model sees it.

    Parameters
    ----------
    model : a classifier returning logits ``[batch, classes]`` (not modified).
    reference, current : Datasets, DataLoaders, ``(inputs, labels)`` tuples or input tensors
        (labels are not needed); at most ``max_samples`` of each are drawn (seeded).
    n_permutations : permutations of the MMD test.  alpha : the family-wise error rate.

    Returns
    -------
    Finding
        ``distribution-shift``: WARN when a Holm-adjusted p-value is at or below ``alpha``;
        the evidence has every p-value and the most shifted predicted classes.

    Examples
    --------
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> same = drift(net, torch.randn(200, 4), torch.randn(200, 4))
    >>> moved = drift(net, torch.randn(200, 4), torch.randn(200, 4) + 3)
    >>> same.severity.value, moved.severity.value
    ('pass', 'warn')
    """
    if not isinstance(model, nn.Module):
        raise InvalidTypeError(f"drift 'model' must be a torch.nn.Module. Got "
                               f"{type(model).__name__} instead.")
    n = check_int(max_samples, "max_samples", owner="drift", min=10)
    n_perm = check_int(n_permutations, "n_permutations", owner="drift", min=19)
    level = check_float(alpha, "alpha", owner="drift", min=0.0, min_inclusive=False, max=0.5)
    net = tensors.eval_copy(model)
    ref = outputs_and_features(net, _sample(reference, n, seed, "reference"))
    cur = outputs_and_features(net, _sample(current, n, seed + 1, "current"))
    names = list(class_names) if class_names is not None else \
        [str(i) for i in range(ref[0].shape[1])]
    sec = shift_section(ref, cur, names, n_permutations=n_perm, seed=seed)
    return shift_finding(sec, {"shift_alpha": float(level or 0.05)})


def shift_finding(sec: DistributionShiftSection, thresholds: dict[str, float]) -> Finding:
    """The ``distribution-shift`` finding graded from a measured section."""
    from explain.checks.base import CheckContext
    from explain.checks.distribution_shift import DistributionShift

    return DistributionShift().run(CheckContext(shift=sec, thresholds=thresholds))
