"""Integrated gradients that stop when they are complete (``n_steps="auto"``).

Completeness says ``sum(attr) = f(x) - f(b)``; since ``sum(attr) = integral of df/dalpha``
along the path, its error is exactly the quadrature error of a 1-D integral whose value is
known from the two end points. The nested trapezoid rule evaluates ``alpha = k / N``; doubling
``N`` reuses every earlier gradient (``T_2N = T_N / 2 + sum(new midpoints) / 2N``), so each
sample is refined only until its own completeness error is within
``tolerance * |f(x) - f(b)|`` (plus a float32 floor) *and* its last doubling moved the
attributions by at most ``5 * tolerance`` of their L1 size (completeness alone can hold by a
lucky cancellation between features on a coarse grid); converged samples stop costing
anything, so a sample needs at least two levels (9 evaluations). Rows of all unconverged samples are packed together into passes of ``rows`` rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from explain.attribution.batching import expand_args

__all__ = ["AutoSteps", "auto_integrated_gradients", "START"]

START = 4          # intervals of the first level (5 evaluations per sample)
_FLOOR = 1e-5      # float32 floor, relative to |f(x)| + |f(b)|
_STEADY = 5.0      # a doubling may move the attributions by 5 x tolerance of their L1 size


@dataclass(frozen=True)
class AutoSteps:
    """The outcome of :func:`auto_integrated_gradients` for one chunk.

    Attributes
    ----------
    values : attributions shaped like the inputs.
    delta : ``[n]`` ``sum(values) - (f(x) - f(b))``, captum's sign convention.
    steps : ``[n]`` int64 model evaluations per sample (``intervals + 1``).
    converged : ``[n]`` bool, completeness within the tolerance.
    """

    values: torch.Tensor
    delta: torch.Tensor
    steps: torch.Tensor
    converged: torch.Tensor


def _passes(forward: Callable[..., torch.Tensor], x: torch.Tensor, base: torch.Tensor,
            target: torch.Tensor, args: tuple, idx: torch.Tensor, alpha: torch.Tensor,
            weight: torch.Tensor, rows: int):
    """Yield ``(index, alpha, weight, grad, target logit)`` of the path points, ``rows`` rows
    per forward+backward pass."""
    n, shape = x.shape[0], (-1,) + (1,) * (x.dim() - 1)
    for lo in range(0, idx.numel(), rows):
        i, a, w = idx[lo:lo + rows], alpha[lo:lo + rows], weight[lo:lo + rows]
        point = (base[i] + a.view(shape) * (x[i] - base[i])).detach().requires_grad_(True)
        with torch.enable_grad():
            out = forward(point, *expand_args(args, i, n))
            picked = out.gather(1, target[i][:, None]).squeeze(1)
            (grad,) = torch.autograd.grad(picked.sum(), point)
        yield i, a, w, grad.detach(), picked.detach()


def _level(n_int: torch.Tensor, todo: torch.Tensor, first: bool) -> tuple[torch.Tensor, ...]:
    """Sample index, alpha and trapezoid weight of the points a level with ``n_int``
    intervals adds (all ``N + 1`` points on the first level, the ``N / 2`` new midpoints
    after a doubling)."""
    samples = todo.nonzero().flatten()
    counts = n_int[samples] + 1 if first else n_int[samples] // 2
    idx = torch.repeat_interleave(samples, counts)
    k = torch.cat([torch.arange(int(c), device=n_int.device) for c in counts])
    per = n_int[idx].to(torch.float64)
    if first:                                   # alpha = k / N, half weight at the ends
        alpha = k / per
        weight = torch.where((k == 0) | (k == n_int[idx]), 0.5, 1.0) / per
    else:                                       # N was just doubled: the N/2 old midpoints
        alpha = (2 * k + 1) / per
        weight = 1.0 / per
    return idx, alpha, weight


def auto_integrated_gradients(forward: Callable[..., torch.Tensor], x: torch.Tensor,
                              baselines: torch.Tensor, target: torch.Tensor, args: tuple,
                              rows: int, tolerance: float = 0.01,
                              max_steps: int = 513) -> AutoSteps:
    """Integrated gradients with per-sample nested trapezoid doubling (see module docstring).

    Examples
    --------
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    >>> x = torch.randn(5, 3)
    >>> out = auto_integrated_gradients(net, x, torch.zeros_like(x), torch.zeros(5).long(),
    ...                                 (), rows=64)
    >>> bool(out.converged.all()), int(out.steps.min()) >= 2 * START + 1
    (True, True)
    """
    n, dev = x.shape[0], x.device
    acc = torch.zeros_like(x, dtype=torch.float64)      # trapezoid sum of gradients
    f0 = torch.zeros(n, dtype=torch.float64, device=dev)
    f1 = torch.zeros_like(f0)
    n_int = torch.full((n,), START, dtype=torch.long, device=dev)
    todo = torch.ones(n, dtype=torch.bool, device=dev)
    converged = torch.zeros_like(todo)
    shape = (-1,) + (1,) * (x.dim() - 1)
    diff = (x - baselines).to(torch.float64)
    first = True
    while True:
        idx, alpha, weight = _level(n_int, todo, first)
        before = acc.clone()
        if not first:
            acc[todo] *= 0.5
        for i, a, w, grad, picked in _passes(forward, x, baselines, target, args, idx,
                                             alpha.to(x.dtype), weight, rows):
            acc.index_add_(0, i, grad.to(torch.float64) * w.view(shape))
            f0[i[a == 0]] = picked[a == 0].to(torch.float64)
            f1[i[a == 1]] = picked[a == 1].to(torch.float64)
        delta = (acc * diff).flatten(1).sum(1) - (f1 - f0)
        tol = tolerance * (f1 - f0).abs() + _FLOOR * (f0.abs() + f1.abs()) + 1e-7
        if not first:   # complete, and the last doubling barely moved any single feature
            moved = ((acc - before) * diff).flatten(1).abs().sum(1)
            size = (acc * diff).flatten(1).abs().sum(1)
            converged |= todo & (delta.abs() <= tol) & (
                moved <= _STEADY * tolerance * size + tol)
        first = False
        todo = ~converged & (2 * n_int + 1 <= max_steps)
        if not todo.any():
            break
        n_int = torch.where(todo, 2 * n_int, n_int)
    values = (acc * diff).to(x.dtype)
    return AutoSteps(values=values, delta=delta.to(x.dtype), steps=n_int + 1,
                     converged=converged)
