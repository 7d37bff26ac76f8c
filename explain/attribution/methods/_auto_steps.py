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

Cost: a refinement round costs a fixed amount (Python, ~100 small tensor ops, a pass) on top
of its rows, so the rounds are kept lean: the path points in buffers that double when full
(``alpha, f, g`` in one float64 table, gradients already multiplied by ``diff`` in float32, as
the model computes them), every end read in one gather per table, the intervals in one float64
table, per-sample totals (trapezoid and error vectors side by side, and the scalars) updated by
each split in one ``index_add_`` each, the new points from a lookup table, and the intervals of
finished samples dropped from the table (a finished sample never reopens: its totals no longer
change).
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

# columns of the point table (float64): alpha, f, g = sum(gd)
_A, _F, _G = range(3)
# columns of the interval table (float64; indices are exact): end point indices, sample, width,
# c - mid of a kink, alpha at the left end, the feature error estimate's part without a kink
# vector, residual r, m, feature error estimate
_LO, _HI, _S, _H, _RATIO, _A0, _LOOSE, _R, _M, _E = range(10)
# summed per sample (loose error, completeness residual, cover) and judged against the sample's
# limits (residual: tolerance, m: cover, feature error: budget), as column slices; the limits
# table of :meth:`_Totals.limits` is (budget, tolerance, cover, budget) to match both
_SCALARS, _SCORED = slice(_LOOSE, _M + 1), slice(_R, _E + 1)


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
    """Every path point evaluated so far (``alpha, f, g`` with ``g = sum(gd)``, and
    ``gd = G * diff`` with ``G`` the gradient), in buffers that double when full. Every vector
    below is in attribution space (times diff) already."""

    pts: torch.Tensor
    gd: torch.Tensor

    def __init__(self, forward: Callable[..., torch.Tensor], x: torch.Tensor,
                 base: torch.Tensor, target: torch.Tensor, args: tuple, rows: int) -> None:
        self.forward, self.target, self.args, self.rows = forward, target, args, rows
        self.n, self.shape = x.shape[0], x.shape[1:]
        self.x, self.base = x.reshape(self.n, -1), base.reshape(self.n, -1)
        self.d = self.x - self.base
        self.size = 0
        self._grow(8 * (START + 1) * self.n)

    def _grow(self, cap: int) -> None:
        old = self.size
        pts = torch.empty((cap, 3), dtype=torch.float64, device=self.x.device)
        gd = self.x.new_empty((cap, self.x.shape[1]))
        if old:
            pts[:old], gd[:old] = self.pts[:old], self.gd[:old]
        self.pts, self.gd = pts, gd

    def add(self, samp: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """Evaluate the points ``(samp, alpha)`` in passes of ``rows`` rows; their indices."""
        start, k = self.size, samp.numel()
        if start + k > self.pts.shape[0]:
            self._grow(2 * (start + k))
        lo = 0
        while lo < k:
            i, a = samp[lo:lo + self.rows], alpha[lo:lo + self.rows]
            d = self.d.index_select(0, i)
            point = torch.addcmul(self.base.index_select(0, i), a.to(d.dtype)[:, None], d)
            point = point.view((-1,) + self.shape).requires_grad_(True)
            with torch.enable_grad():
                out = self.forward(point, *expand_args(self.args, i, self.n))
                picked = out.gather(1, self.target.index_select(0, i)[:, None]).squeeze(1)
                (grad,) = torch.autograd.grad(picked.sum(), point)
            at = slice(start + lo, start + lo + i.numel())
            gd = torch.mul(grad.reshape(d.shape), d, out=self.gd[at])
            self.pts[at, _F] = picked.detach()
            self.pts[at, _G] = gd.sum(1, dtype=torch.float64)
            lo += i.numel()
        self.pts[start:start + k, _A] = alpha
        self.size = start + k
        return torch.arange(start, start + k, device=samp.device)


def _ends(path: _Path, lo: torch.Tensor, hi: torch.Tensor, s: torch.Tensor,
          extra: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Everything about the intervals ``[lo, hi]`` of samples ``s`` that does not depend on a
    parent, from one gather per table (``extra``: more gradient rows wanted, returned last):
    the table without ``m`` (filled in by :func:`_finish`), their ``h / 2``, first-order size
    ``||(G(b) - G(a)) * diff||_1`` (in the columns ``m`` and the loose error until then), kink
    mask, the vectors ``[area | kink error]`` and the gradient rows at ``hi``."""
    c = lo.numel()
    idx = torch.cat([lo, hi, extra])
    ends, gds = path.pts.index_select(0, idx[:2 * c]), path.gd.index_select(0, idx)
    a, dif = ends[:c], ends[c:] - ends[:c]          # dif: h, f(b) - f(a), g(b) - g(a)
    half = dif[:, _A] * 0.5
    r = half * (a[:, _G] + ends[c:, _G]) - dif[:, _F]
    dg = dif[:, _G]
    kink = dg.abs() * half > r.abs()          # the end tangents meet inside: c - mid = ratio
    ratio = torch.where(kink, r / torch.where(kink, dg, 1.0), 0.0)
    gl, gr = gds[:c], gds[c:2 * c]
    jump = gr - gl
    size = jump.abs().sum(1, dtype=torch.float64)
    dtype = gl.dtype
    vec = torch.cat([(gl + gr) * half.to(dtype)[:, None], jump * ratio.to(dtype)[:, None]], 1)
    table = torch.stack([lo.to(torch.float64), hi.to(torch.float64), s.to(torch.float64),
                         dif[:, _A], ratio, a[:, _A], size, r, size, ratio.abs() * size], 1)
    return table, half, kink, vec, gr, gds[2 * c:]


def _finish(table: torch.Tensor, half: torch.Tensor, kink: torch.Tensor,
            move: torch.Tensor | None) -> torch.Tensor:
    """Fill in ``m = min(h/2 size, move)`` (``move``: how much the split that made the
    intervals moved their parent, none on the first level) and the columns that use it."""
    m = half * table[:, _M]
    if move is not None:
        m = torch.minimum(m, move)
    table[:, _M] = m
    table[:, _E] = torch.where(kink, table[:, _E], m)
    table[:, _LOOSE] = torch.where(kink, 0.0, m)
    return table


class _Totals:
    """Per-sample sums over the current intervals: ``vec`` the trapezoid and predicted error
    vectors side by side, ``scalars`` the completeness residual, loose error and first-order
    cover; ``tol`` the completeness tolerance (fixed per sample)."""

    def __init__(self, path: _Path, f0: torch.Tensor, f1: torch.Tensor,
                 tolerance: float) -> None:
        n, feats = path.x.shape
        self.feats, self.tolerance = feats, tolerance
        self.vec = torch.zeros((n, 2 * feats), dtype=torch.float64, device=path.x.device)
        self.scalars = torch.zeros((n, 3), dtype=torch.float64, device=path.x.device)
        self.tol = tolerance * (f1 - f0).abs() + _FLOOR * (f0.abs() + f1.abs()) + 1e-7

    @property
    def acc(self) -> torch.Tensor:
        return self.vec[:, :self.feats]

    def add(self, table: torch.Tensor, vec: torch.Tensor) -> None:
        s = table[:, _S].long()
        self.vec.index_add_(0, s, vec.to(torch.float64))
        self.scalars.index_add_(0, s, table[:, _SCALARS])

    def limits(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``[n, 4]`` limits (budget, completeness tolerance, cover, budget) and each sample's
        excess: its worst error relative to its limit (complete when at most 1)."""
        sums = self.vec.abs().view(-1, 2, self.feats).sum(2)   # |acc|_1, |err|_1
        budget = _FEATURES * self.tolerance * sums[:, 0] + self.tol
        lim = torch.stack([budget, self.tol, _COVER * budget, budget], 1)
        num = self.scalars.clone()                         # loose error, residual, cover
        num[:, 1].abs_()
        num[:, 0] += sums[:, 1]
        return lim, (num / lim[:, :3]).amax(1)


def _split(path: _Path, totals: _Totals, parents: torch.Tensor, new: torch.Tensor,
           owner: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    """Replace ``parents`` (table rows) by their children given the new points ``new`` (one
    parent index ``owner`` each, consecutive and sorted within a parent, ``first`` marks each
    parent's first); update ``totals`` and return the children's rows (each knows how much
    the split moved its parent)."""
    g, c = parents.shape[0], new.numel()
    lo_p, hi_p, s_p = parents[:, :3].long().unbind(1)
    last = torch.cat([first[1:], first.new_ones(1)]).nonzero().view(-1)
    lo = torch.cat([torch.where(first, lo_p.index_select(0, owner), new - 1),
                    new.index_select(0, last)])
    hi = torch.cat([new, hi_p])
    own = torch.cat([owner, torch.arange(g, device=new.device)])
    table, half, kink, vec, gr, gl_p = _ends(path, lo, hi, s_p.index_select(0, own), lo_p)
    gr_p = gr[c:]                              # the last children end where their parents did
    feats, dtype = gl_p.shape[1], gl_p.dtype
    p_vec = torch.cat([(gl_p + gr_p) * (parents[:, _H] * 0.5).to(dtype)[:, None],
                       (gr_p - gl_p) * parents[:, _RATIO].to(dtype)[:, None]], 1)
    d_vec = torch.zeros_like(p_vec).index_add_(0, own, vec).sub_(p_vec)
    move = d_vec[:, :feats].abs().sum(1, dtype=torch.float64)
    table = _finish(table, half, kink, move.index_select(0, own))
    totals.vec.index_add_(0, s_p, d_vec.to(torch.float64))
    sums = torch.zeros((g, 3), dtype=torch.float64, device=new.device).index_add_(
        0, own, table[:, _SCALARS]).sub_(parents[:, _SCALARS])
    totals.scalars.index_add_(0, s_p, sums)
    return table


def _tables(levels: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lookup tables of :func:`_points`: score bounds of levels 2.., and per level the
    fractions of the ``2**j - 1`` new points (padded) and which slots hold one."""
    slots = (1 << levels) - 1
    frac = torch.zeros((levels, slots), dtype=torch.float64)
    for j in range(1, levels + 1):
        frac[j - 1, :(1 << j) - 1] = torch.arange(1, 1 << j, dtype=torch.float64) / (1 << j)
    bounds = torch.tensor([float(1 << j) for j in range(2, levels + 1)], dtype=torch.float64)
    return bounds.to(device), frac.to(device), (frac > 0).to(device)


def _points(score: torch.Tensor, tables: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """New points for intervals being split with these scores: ``2**j - 1`` evenly spaced,
    ``j = floor(log2(score))`` between 1 and ``_LEVELS`` (a kink's error halves per level, so
    an interval 8x over budget needs three). Returns (owner, fraction of the owner's width,
    the owner's first point)."""
    bounds, frac, slot = tables
    level = torch.bucketize(score, bounds, right=True)      # j - 1
    width = frac.shape[1]
    at = slot.index_select(0, level).view(-1).nonzero().view(-1)   # row-major: owner, slot
    fracs = frac.index_select(0, level).view(-1).index_select(0, at)
    return torch.div(at, width, rounding_mode="floor"), fracs, at % width == 0


def auto_integrated_gradients(forward: Callable[..., torch.Tensor], x: torch.Tensor,
                              baselines: torch.Tensor, target: torch.Tensor, args: tuple,
                              rows: int, tolerance: float = 0.01, max_steps: int = 513
                              ) -> AutoSteps:
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
    f0, f1 = path.pts[nodes[:, 0], _F], path.pts[nodes[:, -1], _F]
    totals = _Totals(path, f0, f1, tolerance)
    s0 = torch.arange(n, device=dev).repeat_interleave(START // 2)
    parents, half, kink, vec, _, _ = _ends(path, nodes[:, :-1:2].flatten(),
                                           nodes[:, 2::2].flatten(), s0, s0[:0])
    parents = _finish(parents, half, kink, None)
    totals.add(parents, vec)
    g = parents.shape[0]
    tab = _split(path, totals, parents, nodes[:, 1::2].flatten(), torch.arange(g, device=dev),
                 torch.ones(g, dtype=torch.bool, device=dev))
    steps = torch.full((n,), START + 1, dtype=torch.long, device=dev)
    tables = _tables(_LEVELS, dev)
    nan = torch.tensor(float("nan"), dtype=torch.float64, device=dev)
    while True:
        lim, excess = totals.limits()
        converged = excess <= 1
        s = tab[:, _S].long()
        score = (tab[:, _SCORED].abs() / lim[:, 1:].index_select(0, s)).amax(1)
        open_ = ~converged & (steps < max_steps)
        top = torch.zeros(n, dtype=score.dtype, device=dev).scatter_reduce_(0, s, score, "amax")
        # a closed sample (complete, or at max_steps) compares with NaN: never split
        split = (score >= torch.where(open_, _SHARE * top, nan).index_select(0, s)
                 ).nonzero().view(-1)
        if split.numel() == 0:
            break
        owner, frac, first = _points(score.index_select(0, split), tables)
        samp = s.index_select(0, split).index_select(0, owner)
        added = torch.bincount(samp, minlength=n)
        if bool((steps + added > max_steps).any()):
            split, owner, samp, frac = _capped(split, score[split], s, steps, max_steps)
            first = torch.ones_like(owner, dtype=torch.bool)
            added = torch.bincount(samp, minlength=n)
        parents = tab.index_select(0, split)
        at = parents.index_select(0, owner)
        new = path.add(samp, at[:, _A0] + frac * at[:, _H])
        # keep the open samples' other intervals: a closed sample never reopens (its totals
        # no longer change), so its intervals are not scored again
        keep = open_.index_select(0, s).index_fill_(0, split, False).nonzero().view(-1)
        tab = torch.cat([tab.index_select(0, keep),
                         _split(path, totals, parents, new, owner, first)])
        steps = steps + added
    acc = totals.acc
    values = acc.to(x.dtype).reshape(x.shape)
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
