"""Integrated gradients that stop when they are complete (``n_steps="auto"``).

Completeness says ``sum(attr) = f(x) - f(b)``; since ``sum(attr) = integral of df/dalpha``
along the path, its error is exactly the quadrature error of a 1-D integral. With the
composite trapezoid rule that error splits over the intervals: every interval ``[a, b]`` knows
its own residual ``r = h/2 (g(a) + g(b)) - (f(b) - f(a))`` (``g = G . (x - baseline)``, ``G``
the gradient) from the values at its two ends, so the refinement is *local*: only intervals
whose residual or feature error is too large for their width get new points. On a ReLU
network the path is piecewise linear between kinks, every kink-free interval has ``r = 0`` and
a zero feature error, and only the intervals that contain a kink are refined.

The feature error of an interval (completeness bounds only the sum) is estimated from its ends
too: a single kink at ``c`` errs by ``(G(b) - G(a)) (c - mid)`` on the features and by
``(g(b) - g(a)) (c - mid) = r`` on their sum, so the feature error *vector* is
``(G(b) - G(a)) r / (g(b) - g(a))``; these vectors are summed per sample (errors of different
kinks cancel as they do in the result). Where no kink fits, the estimate is
``m = min(h/2 ||(G(b) - G(a)) * diff||_1, D)``: the first term bounds one kink's error, ``D``
is how much the split that made the interval moved its parent's trapezoid (the usual
Richardson estimate on a smooth path).

**Two levels on every interval.** The first pass evaluates ``START + 1`` points per sample as
``START / 2`` intervals each already halved, so no interval is judged on one level alone and
every interval has a ``D``. With the 4 first intervals of before judged on their ends only, a
ReLU net with 8 kinks inside ``[0, 0.25]`` (ends that agree with a single kink) was accepted
7.2% off on the features (a hypothesis counterexample); halved, it is 2.0% off.

A sample is complete when ``|sum r| <= tolerance * |f(x) - f(b)|`` (plus a float32 floor),
its summed feature error is at most ``_FEATURES * tolerance`` of the attributions' L1 size and
the sum of ``m`` over *all* its intervals at most ``_COVER`` times that (a guard against
single-kink estimates that cancel by luck). An unfinished sample splits its intervals whose
error (relative to its budget) is at least ``_SHARE`` of its worst, the worst first when
``max_steps`` would be exceeded; an interval ``2**j`` times over its budget is split into
``2**j`` equal parts in the same pass (at most ``_LEVELS`` levels: each level halves a kink's
error). Every evaluation stays in the final rule, and every decision about a sample depends
on that sample alone (not on the batch or the rows per pass, up to the float rounding of
batched passes).

Cost: a refinement round costs a fixed amount (Python, gathers, a pass) on top of its rows.
Everything is therefore kept in a few tensors: the path points in buffers that double when
full, gradients stored already multiplied by ``diff`` (float32, as the model computes them),
the intervals in one float64 table, and per-sample totals updated by each split.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from explain.attribution.batching import expand_args

__all__ = ["AutoSteps", "auto_integrated_gradients", "START"]

START = 8          # intervals of the first pass (9 evaluations per sample): 4, each halved
_FLOOR = 1e-6      # float32 floor, relative to |f(x)| + |f(b)|
_FEATURES = 2.0    # feature error budget: 2 x tolerance of the attributions' L1 size
_SHARE = 0.5       # split the intervals with at least this share of a sample's worst error
_LEVELS = 3        # at most 3 levels of halving (8 parts) per interval in one pass
_COVER = 3.0       # bound on the sum of first-order bounds / parent moves, in budgets

# columns of the interval table (float64; indices are exact): end point indices, sample, width,
# residual r, feature error estimate, its part without a kink vector, c - mid of a kink, m
_LO, _HI, _S, _H, _R, _E, _LOOSE, _RATIO, _M = range(9)


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
    """Every path point evaluated so far (sample, alpha, f, ``gd = G * diff`` with ``G`` the
    gradient, ``g = sum(gd)``), in buffers that double when full. Every vector below is in
    attribution space (times diff) already."""

    samp: torch.Tensor
    alpha: torch.Tensor
    f: torch.Tensor
    g: torch.Tensor
    gd: torch.Tensor

    def __init__(self, forward: Callable[..., torch.Tensor], x: torch.Tensor,
                 base: torch.Tensor, target: torch.Tensor, args: tuple, rows: int,
                 after_first_pass: Callable[[], int] | None = None) -> None:
        self.forward, self.target, self.args, self.rows = forward, target, args, rows
        self.after_first_pass = after_first_pass
        self.n, self.shape = x.shape[0], x.shape[1:]
        self.x, self.base = x.reshape(self.n, -1), base.reshape(self.n, -1)
        self.d = self.x - self.base
        self.size = 0
        self._grow(8 * (START + 1) * self.n)

    def _grow(self, cap: int) -> None:
        old, dev, f64 = self.size, self.x.device, torch.float64
        samp = torch.empty(cap, dtype=torch.long, device=dev)
        alpha = torch.empty(cap, dtype=f64, device=dev)
        f, g = torch.empty(cap, dtype=f64, device=dev), torch.empty(cap, dtype=f64, device=dev)
        gd = self.x.new_empty((cap, self.x.shape[1]))
        if old:
            samp[:old], alpha[:old], f[:old], g[:old] = (self.samp[:old], self.alpha[:old],
                                                         self.f[:old], self.g[:old])
            gd[:old] = self.gd[:old]
        self.samp, self.alpha, self.f, self.g, self.gd = samp, alpha, f, g, gd

    def add(self, samp: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """Evaluate the points ``(samp, alpha)`` in passes of ``rows`` rows; their indices."""
        start, k = self.size, samp.numel()
        if start + k > self.samp.numel():
            self._grow(2 * (start + k))
        lo = 0
        while lo < k:
            i, a = samp[lo:lo + self.rows], alpha[lo:lo + self.rows]
            point = torch.addcmul(self.base[i], a.to(self.x.dtype)[:, None], self.d[i])
            point = point.view((-1,) + self.shape).requires_grad_(True)
            with torch.enable_grad():
                out = self.forward(point, *expand_args(self.args, i, self.n))
                picked = out.gather(1, self.target[i][:, None]).squeeze(1)
                (grad,) = torch.autograd.grad(picked.sum(), point)
            at = slice(start + lo, start + lo + i.numel())
            gd = grad.detach().reshape(i.numel(), -1) * self.d[i]
            self.gd[at] = gd
            self.f[at] = picked.detach()
            self.g[at] = gd.sum(1, dtype=torch.float64)
            lo += i.numel()
            if self.after_first_pass is not None:   # that pass was the measured probe
                self.rows, self.after_first_pass = max(1, self.after_first_pass()), None
        self.samp[start:start + k], self.alpha[start:start + k] = samp, alpha
        self.size = start + k
        return torch.arange(start, start + k, device=samp.device)


def _local(path: _Path, lo: torch.Tensor, hi: torch.Tensor, move: torch.Tensor | None = None
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Table rows of the intervals ``[lo, hi]``, their trapezoid areas and predicted error
    vectors (in ``path.gd``'s dtype). ``move``: how much the split that made them moved their
    parent (none on the first level), a bound on an interval that holds no single kink."""
    s, h = path.samp[lo], path.alpha[hi] - path.alpha[lo]
    gl, gr = path.g[lo], path.g[hi]
    r = h / 2 * (gl + gr) - (path.f[hi] - path.f[lo])
    dg = gr - gl
    kink = dg.abs() * h / 2 > r.abs()          # the end tangents meet inside: c - mid = ratio
    ratio = torch.where(kink, r / torch.where(kink, dg, 1.0), 0.0)
    gd_l, gd_r = path.gd[lo], path.gd[hi]
    jump = gd_r - gd_l
    size = jump.abs().sum(1, dtype=torch.float64)           # ||(G(b) - G(a)) * diff||_1
    m = h / 2 * size if move is None else torch.minimum(h / 2 * size, move)
    table = torch.stack([lo.to(torch.float64), hi.to(torch.float64), s.to(torch.float64), h, r,
                         torch.where(kink, ratio.abs() * size, m), torch.where(kink, 0.0, m),
                         ratio, m], 1)
    dtype = jump.dtype
    return table, (gd_l + gd_r) * (h / 2).to(dtype)[:, None], jump * ratio.to(dtype)[:, None]


class _Totals:
    """Per-sample sums over the current intervals: trapezoid and predicted error vectors,
    and (columns of ``scalars``) completeness residual, loose error and first-order cover."""

    def __init__(self, path: _Path) -> None:
        like = path.x.to(torch.float64)
        self.acc, self.err = torch.zeros_like(like), torch.zeros_like(like)
        self.scalars = torch.zeros((path.n, 3), dtype=torch.float64, device=like.device)

    def add(self, tab: torch.Tensor, area: torch.Tensor, est: torch.Tensor) -> None:
        s = tab[:, _S].long()
        self.acc.index_add_(0, s, area.to(torch.float64))
        self.err.index_add_(0, s, est.to(torch.float64))
        self.scalars.index_add_(0, s, tab[:, [_R, _LOOSE, _M]])

    def budgets(self, path: _Path, f0: torch.Tensor, f1: torch.Tensor,
                tolerance: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Completeness tolerance, feature budget and each sample's excess: its worst error
        relative to its budget (complete when at most 1)."""
        tol = tolerance * (f1 - f0).abs() + _FLOOR * (f0.abs() + f1.abs()) + 1e-7
        size = self.acc.abs().sum(1)
        budget = _FEATURES * tolerance * size + tol
        delta, loose, cover = self.scalars.unbind(1)
        ferr = self.err.abs().sum(1) + loose
        excess = torch.maximum(torch.maximum(delta.abs() / tol, ferr / budget),
                               cover / (_COVER * budget))
        return tol, budget, excess


def _split(path: _Path, totals: _Totals, parents: torch.Tensor, new: torch.Tensor,
           owner: torch.Tensor) -> torch.Tensor:
    """Replace ``parents`` (table rows) by their children given the new points ``new`` (one
    parent index ``owner`` each, consecutive and sorted within a parent); update ``totals``
    and return the children's rows (each knows how much the split moved its parent)."""
    g = parents.shape[0]
    first = torch.ones_like(owner, dtype=torch.bool)
    first[1:] = owner[1:] != owner[:-1]
    last = torch.ones_like(first)
    last[:-1] = first[1:]
    lo_p, hi_p, s_p = parents[:, _LO].long(), parents[:, _HI].long(), parents[:, _S].long()
    lo = torch.cat([torch.where(first, lo_p[owner], new - 1), new[last]])
    hi = torch.cat([new, hi_p])
    own = torch.cat([owner, torch.arange(g, device=owner.device)])
    gd_l, gd_r = path.gd[lo_p], path.gd[hi_p]
    dtype = gd_l.dtype
    h = path.alpha[hi] - path.alpha[lo]
    area = (path.gd[lo] + path.gd[hi]) * (h / 2).to(dtype)[:, None]
    d_acc = torch.zeros_like(gd_l).index_add_(0, own, area)
    d_acc -= (gd_l + gd_r) * (parents[:, _H] / 2).to(dtype)[:, None]
    move = d_acc.abs().sum(1, dtype=torch.float64)
    children, _, est = _local(path, lo, hi, move[own])
    d_err = torch.zeros_like(gd_l).index_add_(0, own, est)
    d_err -= (gd_r - gd_l) * parents[:, _RATIO].to(dtype)[:, None]
    totals.acc.index_add_(0, s_p, d_acc.to(torch.float64))
    totals.err.index_add_(0, s_p, d_err.to(torch.float64))
    sums = torch.zeros((g, 3), dtype=torch.float64, device=new.device).index_add_(
        0, own, children[:, [_R, _LOOSE, _M]]).sub_(parents[:, [_R, _LOOSE, _M]])
    totals.scalars.index_add_(0, s_p, sums)
    return children


def _points(score: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """New points for intervals being split with these scores: ``2**j - 1`` evenly spaced,
    ``j = floor(log2(score))`` between 1 and ``_LEVELS`` (a kink's error halves per level, so
    an interval 8x over budget needs three). Returns (owner, fraction of the owner's width)."""
    levels = torch.log2(score.clamp(min=1.0)).floor().clamp(1, _LEVELS).long()
    count = (1 << levels) - 1
    owner = torch.repeat_interleave(torch.arange(score.numel(), device=score.device), count)
    begin = torch.cumsum(count, 0) - count
    rank = torch.arange(owner.numel(), device=score.device) - begin[owner] + 1
    return owner, rank.to(torch.float64) / (count[owner] + 1)


def auto_integrated_gradients(forward: Callable[..., torch.Tensor], x: torch.Tensor,
                              baselines: torch.Tensor, target: torch.Tensor, args: tuple,
                              rows: int, tolerance: float = 0.01, max_steps: int = 513,
                              after_first_pass: Callable[[], int] | None = None) -> AutoSteps:
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
    path = _Path(forward, x, baselines, target, args, rows, after_first_pass)
    k = torch.arange(START + 1, device=dev)
    nodes = path.add(torch.arange(n, device=dev).repeat_interleave(START + 1),
                     (k / START).to(torch.float64).repeat(n)).view(n, START + 1)
    totals = _Totals(path)
    parents, area, est = _local(path, nodes[:, :-1:2].flatten(), nodes[:, 2::2].flatten())
    totals.add(parents, area, est)
    tab = _split(path, totals, parents, nodes[:, 1::2].flatten(),
                 torch.arange(parents.shape[0], device=dev))
    f0, f1 = path.f[nodes[:, 0]], path.f[nodes[:, -1]]
    steps = torch.full((n,), START + 1, dtype=torch.long, device=dev)
    while True:
        tol, budget, excess = totals.budgets(path, f0, f1, tolerance)
        converged = excess <= 1
        s = tab[:, _S].long()
        score = torch.maximum(tab[:, _R].abs() / tol[s], tab[:, _E] / budget[s])
        score = torch.maximum(score, tab[:, _M] / (_COVER * budget[s]))
        open_ = ~converged & (steps < max_steps)
        top = torch.zeros(n, dtype=score.dtype, device=dev).scatter_reduce_(0, s, score, "amax")
        split = ((score >= _SHARE * top[s]) & open_[s]).nonzero().flatten()
        if split.numel() == 0:
            break
        owner, frac = _points(score[split])
        samp = s[split][owner]
        added = torch.bincount(samp, minlength=n)
        if bool((steps + added > max_steps).any()):
            split, owner, samp, frac = _capped(split, score[split], s, steps, max_steps)
            added = torch.bincount(samp, minlength=n)
        parents = tab[split]
        alpha = path.alpha[parents[owner, _LO].long()] + frac * parents[owner, _H]
        new = path.add(samp, alpha)
        keep = torch.ones(tab.shape[0], dtype=torch.bool, device=dev)
        keep[split] = False
        tab = torch.cat([tab[keep], _split(path, totals, parents, new, owner)])
        steps = steps + added
    acc = totals.acc
    values = acc.to(x.dtype).view(x.shape)
    delta = acc.sum(1) - (f1 - f0)
    return AutoSteps(values=values, delta=delta.to(x.dtype), steps=steps,
                     converged=converged)


def _capped(split: torch.Tensor, score: torch.Tensor, samp: torch.Tensor, steps: torch.Tensor,
            max_steps: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Near ``max_steps``: one midpoint each for a sample's worst intervals, as many as fit."""
    order = torch.argsort(score, descending=True, stable=True)
    order = order[torch.argsort(samp[split][order], stable=True)]
    s = samp[split][order]
    rank = torch.arange(s.numel(), device=s.device) - torch.searchsorted(s, s)
    pick = order[rank < (max_steps - steps)[s]]
    pick = pick.sort().values
    split = split[pick]
    owner = torch.arange(split.numel(), device=split.device)
    frac = torch.full((split.numel(),), 0.5, dtype=torch.float64, device=split.device)
    return split, owner, samp[split], frac
