"""Integrated gradients that stop when they are complete (``n_steps="auto"``).

Completeness says ``sum(attr) = f(x) - f(b)``; since ``sum(attr) = integral of df/dalpha``
along the path, its error is exactly the quadrature error of a 1-D integral. With the
composite trapezoid rule that error splits over the intervals: every interval ``[a, b]`` knows
its own residual ``r = h/2 (g(a) + g(b)) - (f(b) - f(a))`` (``g = grad . (x - baseline)``)
from the values at its two ends, so the refinement is *local*: only intervals whose residual
or feature error is too large for their width get a midpoint. On a ReLU network the path is
piecewise linear between kinks, every kink-free interval has ``r = 0`` and a zero feature
error, and only the intervals that contain a kink are refined.

The feature error of an interval (completeness bounds only the sum) is estimated from its ends
too: a single kink at ``c`` errs by ``(G(b) - G(a)) (c - mid)`` on the features and by
``(g(b) - g(a)) (c - mid) = r`` on their sum, so the feature error *vector* is
``(G(b) - G(a)) r / (g(b) - g(a))``; these vectors are summed per sample (errors of different
kinks cancel as they do in the result). Where no kink fits, the estimate is
``m = min(h/2 ||(G(b) - G(a)) * diff||_1, D)`` (the first term bounds one kink's error; ``D =
h/4 ||(2 G(m) - G(a) - G(b)) * diff||_1`` is how much the split that made the interval moved
its parent, the usual Richardson estimate on a smooth path).

A sample is complete when ``|sum r| <= tolerance * |f(x) - f(b)|`` (plus a float32 floor),
its summed feature error is at most ``_FEATURES * tolerance`` of the attributions' L1 size and
the sum of ``m`` at most ``_ABS`` times that (a guard against kink estimates that cancel by
luck). An unfinished sample splits its intervals whose error (each relative to its budget) is
at least ``_SHARE`` of its worst, the worst first when ``max_steps`` would be exceeded; an
interval ``2**j`` times over its budget is split into ``2**j`` equal parts in the same pass
(``j`` levels at once, at most ``_LEVELS``: each level halves a kink's error). Every
evaluation stays in the final rule; per-sample totals are updated as intervals are split, and
the rows of all unfinished samples are packed into passes of ``rows`` rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from explain.attribution.batching import expand_args

__all__ = ["AutoSteps", "auto_integrated_gradients", "START"]

START = 4          # intervals of the first level (5 evaluations per sample)
_FLOOR = 1e-6      # float32 floor, relative to |f(x)| + |f(b)|
_FEATURES = 2.0    # feature error budget: 2 x tolerance of the attributions' L1 size
_ABS = 3.0         # bound on the sum of first-order bounds / parent moves, in budgets
_SHARE = 0.5       # split the intervals with at least this share of a sample's worst error
_LEVELS = 3        # at most 3 levels of halving (8 parts) per interval in one pass


@dataclass(frozen=True)
class AutoSteps:
    """The outcome of :func:`auto_integrated_gradients` for one chunk.

    Attributes
    ----------
    values : attributions shaped like the inputs.
    delta : ``[n]`` ``sum(values) - (f(x) - f(b))``, captum's sign convention.
    steps : ``[n]`` int64 model evaluations per sample (path points).
    converged : ``[n]`` bool, completeness and feature error within the tolerance.
    """

    values: torch.Tensor
    delta: torch.Tensor
    steps: torch.Tensor
    converged: torch.Tensor


class _Path:
    """Every path point evaluated so far: sample, alpha, f, g = G . diff and the gradient G."""

    def __init__(self, forward: Callable[..., torch.Tensor], x: torch.Tensor,
                 base: torch.Tensor, target: torch.Tensor, args: tuple, rows: int) -> None:
        self.forward, self.x, self.base, self.target, self.args = forward, x, base, target, args
        self.rows, dev = rows, x.device
        self.diff = (x - base).to(torch.float64)
        self.samp = torch.zeros(0, dtype=torch.long, device=dev)
        self.alpha = torch.zeros(0, dtype=torch.float64, device=dev)
        self.f = torch.zeros(0, dtype=torch.float64, device=dev)
        self.g = torch.zeros_like(self.f)
        self.grad = x.new_zeros((0,) + x.shape[1:])

    def add(self, samp: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """Evaluate the points ``(samp, alpha)`` in passes of ``rows`` rows; their indices."""
        n, shape = self.x.shape[0], (-1,) + (1,) * (self.x.dim() - 1)
        fs, gs, grads = [], [], []
        for lo in range(0, samp.numel(), self.rows):
            i, a = samp[lo:lo + self.rows], alpha[lo:lo + self.rows].to(self.x.dtype)
            point = (self.base[i] + a.view(shape) * (self.x[i] - self.base[i])).detach()
            point.requires_grad_(True)
            with torch.enable_grad():
                out = self.forward(point, *expand_args(self.args, i, n))
                picked = out.gather(1, self.target[i][:, None]).squeeze(1)
                (grad,) = torch.autograd.grad(picked.sum(), point)
            fs.append(picked.detach().to(torch.float64))
            gs.append((grad.to(torch.float64) * self.diff[i]).flatten(1).sum(1))
            grads.append(grad.detach())
        start = self.samp.numel()
        self.samp, self.alpha = torch.cat([self.samp, samp]), torch.cat([self.alpha, alpha])
        self.f, self.g = torch.cat([self.f, *fs]), torch.cat([self.g, *gs])
        self.grad = torch.cat([self.grad, *grads])
        return torch.arange(start, self.samp.numel(), device=samp.device)

    def l1(self, vectors: torch.Tensor, samp: torch.Tensor) -> torch.Tensor:
        """``||vectors * diff[samp]||_1`` per row."""
        return (vectors.to(torch.float64) * self.diff[samp]).abs().flatten(1).sum(1)


@dataclass(frozen=True)
class _Intervals:
    """Per interval: its end points, sample, width, residual ``r``, feature error ``e``
    (kink estimate or bound), ``m`` (first-order bound or the parent's move), whether the
    single-kink estimate applies and the parent's move (``inf`` on the first level)."""

    left: torch.Tensor
    right: torch.Tensor
    samp: torch.Tensor
    h: torch.Tensor
    r: torch.Tensor
    e: torch.Tensor
    m: torch.Tensor
    kink: torch.Tensor
    parent: torch.Tensor


def _measure(path: _Path, left: torch.Tensor, right: torch.Tensor,
             parent: torch.Tensor) -> tuple[_Intervals, torch.Tensor, torch.Tensor]:
    """The intervals, their gradient areas and feature error vectors (recomputed from the
    stored gradients instead of kept, which would double the memory)."""
    shape = (-1,) + (1,) * (path.x.dim() - 1)
    samp, h = path.samp[left], path.alpha[right] - path.alpha[left]
    gl, gr = path.grad[left].to(torch.float64), path.grad[right].to(torch.float64)
    dg = path.g[right] - path.g[left]
    r = h / 2 * (path.g[left] + path.g[right]) - (path.f[right] - path.f[left])
    # a single kink at c errs by (G(b) - G(a)) (c - m) on the features and (g(b) - g(a))
    # (c - m) on their sum: the feature error vector is (G(b) - G(a)) r / (g(b) - g(a))
    m = torch.minimum(h / 2 * path.l1(gr - gl, samp), parent)
    kink = dg.abs() * h / 2 > r.abs()          # the kink lies inside the interval
    ratio = torch.where(kink, r / torch.where(kink, dg, 1.0), 0.0)
    err = (gr - gl) * ratio.view(shape)
    e = torch.where(kink, path.l1(err, samp), m)
    return (_Intervals(left, right, samp, h, r, e, m, kink, parent),
            (gl + gr) * (h / 2).view(shape), err)


class _Totals:
    """Per-sample sums over the current intervals, updated as intervals come and go."""

    def __init__(self, path: _Path) -> None:
        n = path.x.shape[0]
        self.acc, self.err = torch.zeros_like(path.diff), torch.zeros_like(path.diff)
        self.delta = torch.zeros(n, dtype=torch.float64, device=path.diff.device)
        self.loose, self.cover = torch.zeros_like(self.delta), torch.zeros_like(self.delta)

    def add(self, measured: tuple[_Intervals, torch.Tensor, torch.Tensor], sign: float) -> None:
        iv, area, err = measured
        self.acc.index_add_(0, iv.samp, area, alpha=sign)
        self.err.index_add_(0, iv.samp, err, alpha=sign)
        self.delta.index_add_(0, iv.samp, iv.r, alpha=sign)
        self.loose.index_add_(0, iv.samp, torch.where(iv.kink, 0.0, iv.e), alpha=sign)
        self.cover.index_add_(0, iv.samp, iv.m, alpha=sign)

    def budgets(self, path: _Path, f0: torch.Tensor, f1: torch.Tensor,
                tolerance: float) -> tuple[torch.Tensor, ...]:
        """Completeness tolerance, feature budget and whether each sample is complete."""
        tol = tolerance * (f1 - f0).abs() + _FLOOR * (f0.abs() + f1.abs()) + 1e-7
        size = (self.acc * path.diff).abs().flatten(1).sum(1)
        budget = _FEATURES * tolerance * size + tol
        ferr = (self.err * path.diff).abs().flatten(1).sum(1) + self.loose
        done = (self.delta.abs() <= tol) & (ferr <= budget) & (self.cover <= _ABS * budget)
        return tol, budget, done


def _scores(iv: _Intervals, tol: torch.Tensor, budget: torch.Tensor) -> torch.Tensor:
    """Each interval's worst error relative to its sample's budget for it."""
    s = iv.samp
    score = torch.maximum(iv.r.abs() / tol[s], iv.e / budget[s])
    return torch.maximum(score, iv.m / (_ABS * budget[s]))


def _splits(iv: _Intervals, score: torch.Tensor, done: torch.Tensor, steps: torch.Tensor,
            max_steps: int) -> torch.Tensor:
    """Intervals to split: in an unfinished sample, those whose score is at least ``_SHARE`` of
    the sample's largest, the worst first while the sample stays within ``max_steps`` points."""
    s = iv.samp
    top = torch.zeros_like(steps, dtype=score.dtype).scatter_reduce_(0, s, score, "amax")
    cand = ((score >= _SHARE * top[s]) & ~done[s]).nonzero().flatten()
    cand = cand[torch.argsort(score[cand], descending=True, stable=True)]
    cand = cand[torch.argsort(s[cand], stable=True)]
    first = torch.searchsorted(s[cand], s[cand])       # rank within the sample (sorted)
    rank = torch.arange(cand.numel(), device=s.device) - first
    return cand[rank < (max_steps - steps)[s[cand]]]


def _levels(score: torch.Tensor, samp: torch.Tensor, steps: torch.Tensor,
            max_steps: int) -> torch.Tensor:
    """Levels of halving for each interval being split: ``floor(log2(score))`` between 1 and
    ``_LEVELS`` (a kink's error halves per level, so an interval 8x over budget needs three),
    one level in a sample that would otherwise pass ``max_steps``."""
    levels = torch.log2(score.clamp(min=1.0)).floor().clamp(1, _LEVELS).long()
    added = torch.bincount(samp, weights=((1 << levels) - 1).to(torch.float64),
                           minlength=steps.numel())
    room = steps + added <= max_steps
    return torch.where(room[samp], levels, torch.ones_like(levels))


def _take(iv: _Intervals, index: torch.Tensor) -> _Intervals:
    return _Intervals(*(getattr(iv, f)[index] for f in _Intervals.__dataclass_fields__))


def _join(a: _Intervals, b: _Intervals) -> _Intervals:
    return _Intervals(*(torch.cat([getattr(a, f), getattr(b, f)])
                        for f in _Intervals.__dataclass_fields__))


def _refine(path: _Path, old: _Intervals, levels: torch.Tensor
            ) -> tuple[tuple[_Intervals, torch.Tensor, torch.Tensor], torch.Tensor]:
    """Split each interval of ``old`` into ``2**level`` equal parts, every new point in one
    pass; the new intervals, each with its parent's move (the split that made it), and the
    points added per old interval."""
    groups = [(level, (levels == level).nonzero().flatten()) for level in range(1, _LEVELS + 1)]
    groups = [(level, g) for level, g in groups if g.numel()]
    samps, alphas = [], []
    for level, g in groups:
        k = 1 << level
        frac = torch.arange(1, k, device=g.device, dtype=torch.float64) / k
        a_lo, h = path.alpha[old.left[g]], old.h[g]
        alphas.append((a_lo[:, None] + h[:, None] * frac).flatten())
        samps.append(old.samp[g].repeat_interleave(k - 1))
    idx = path.add(torch.cat(samps), torch.cat(alphas))
    lefts, rights, moves, start = [], [], [], 0
    for level, g in groups:
        k = 1 << level
        new = idx[start:start + g.numel() * (k - 1)].view(-1, k - 1)
        start += new.numel()
        nodes = torch.cat([old.left[g][:, None], new, old.right[g][:, None]], 1)   # [g, k+1]
        lo, mid, hi = nodes[:, 0:k:2], nodes[:, 1:k:2], nodes[:, 2::2]           # parents
        s = old.samp[g][:, None].expand_as(mid).flatten()
        h = (old.h[g] * 2 / k)[:, None].expand_as(mid).flatten()
        grad = path.grad
        move = h / 4 * path.l1(2 * grad[mid.flatten()] - grad[lo.flatten()] -
                               grad[hi.flatten()], s)
        lefts.append(nodes[:, :-1].flatten())
        rights.append(nodes[:, 1:].flatten())
        moves.append(move.view(-1, k // 2).repeat_interleave(2, dim=1).flatten())
    new_iv = _measure(path, torch.cat(lefts), torch.cat(rights), torch.cat(moves))
    return new_iv, ((1 << levels) - 1).to(torch.float64)


def auto_integrated_gradients(forward: Callable[..., torch.Tensor], x: torch.Tensor,
                              baselines: torch.Tensor, target: torch.Tensor, args: tuple,
                              rows: int, tolerance: float = 0.01,
                              max_steps: int = 513) -> AutoSteps:
    """Integrated gradients with per-interval adaptive trapezoid refinement (module docstring).

    Examples
    --------
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    >>> x = torch.randn(5, 3)
    >>> out = auto_integrated_gradients(net, x, torch.zeros_like(x), torch.zeros(5).long(),
    ...                                 (), rows=64)
    >>> bool(out.converged.all()), bool((out.steps >= START + 1).all())
    (True, True)
    """
    n, dev = x.shape[0], x.device
    path = _Path(forward, x, baselines, target, args, rows)
    k = torch.arange(START + 1, device=dev)
    nodes = path.add(torch.arange(n, device=dev).repeat_interleave(START + 1),
                     (k / START).to(torch.float64).repeat(n)).view(n, START + 1)
    left, right = nodes[:, :-1].flatten(), nodes[:, 1:].flatten()
    measured = _measure(path, left, right,
                        torch.full_like(left, float("inf"), dtype=torch.float64))
    totals, iv = _Totals(path), measured[0]
    totals.add(measured, 1.0)
    f0, f1 = path.f[nodes[:, 0]], path.f[nodes[:, -1]]
    steps = torch.full((n,), START + 1, dtype=torch.long, device=dev)
    while True:
        tol, budget, converged = totals.budgets(path, f0, f1, tolerance)
        score = _scores(iv, tol, budget)
        split = _splits(iv, score, converged | (steps >= max_steps), steps, max_steps)
        if split.numel() == 0:
            break
        old = _take(iv, split)
        new, added = _refine(path, old, _levels(score[split], old.samp, steps, max_steps))
        keep = torch.ones_like(iv.left, dtype=torch.bool)
        keep[split] = False
        totals.add(_measure(path, old.left, old.right, old.parent), -1.0)
        totals.add(new, 1.0)
        iv = _join(_take(iv, keep.nonzero().flatten()), new[0])
        steps = steps + torch.bincount(old.samp, weights=added, minlength=n).long()
    values = (totals.acc * path.diff).to(x.dtype)
    delta = (totals.acc * path.diff).flatten(1).sum(1) - (f1 - f0)
    return AutoSteps(values=values, delta=delta.to(x.dtype), steps=steps,
                     converged=converged)
