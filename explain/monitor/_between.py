"""What happened between two records: running statistics of every step, kept on the device.

Sampled steps see one step in ``every``; a spike of the gradient norm or of the loss on any other
step would fall between them. These trackers see every step at a few fused device ops and no
host synchronisation; their values reach the CPU only at a record, in its one transfer:

* :class:`LossCounter` keeps each step's loss tensor (no op at all); a record reads them as they
  are (one ``stack``) and reduces them on the host: non-finite count, largest and mean finite
  loss, count (past ``fold_every`` kept steps they are reduced on the device first);
* :class:`StepTracker` takes the global gradient norm at the end of every backward (before the
  loop clips it: a post-accumulate-grad hook on the first and the last trainable parameter,
  registered once at start and removed at close, queues one callback at the end of the
  backward; one ``torch._foreach_norm``), and the weight norm of every watched layer after every
  ``ratio_every``-th ``step()`` (one ``torch._foreach_norm``). A record reads the per-parameter
  norms as they are (a ``stack`` each) and combines them on the host, in plain Python: a few
  dozen values, against ~40 tiny device ops (~0.3 ms per record on a CPU) to reduce them there.

The update-to-weight ratio of every step would need a copy of all weights at every step (memory
and a full read/write of the model per step); instead the tracker uses its cheap lower bound
``| ||W_t|| - ||W_t-1|| | / ||W_t-1|| <= ||W_t - W_t-1|| / ||W_t-1||`` (the triangle inequality),
read every ``ratio_every`` steps as the mean change per step of the window (see
:class:`StepTracker`), so the tracked maximum does not overstate a sustained ratio. A learning
rate far too high grows or shrinks the weights' norm at every step, which this bound sees; a
pure rotation it does not, and one large step is diluted by the window (the sampled steps still
measure the exact ratio).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch

from explain.monitor._layers import loss_scale
from explain.monitor._losses import LossCounter, LossTake
from explain.monitor._record import norms

__all__ = ["LossCounter", "LossTake", "StepTracker", "TrackerTake", "BETWEEN_KEYS", "CLIP_TOLERANCE", "append_between",
           "between_row", "finish_tail"]

#: the per-record columns of ``History.between``
BETWEEN_KEYS = ("count", "grad_norm_max", "grad_norm_mean", "loss_max", "loss_mean",
                "update_ratio_max")

#: relative drop of the gradient norm between backward and step() that counts as clipping
#: (float32 round-off of a rescale is ~1e-7; clip_grad_norm_ scales by max_norm / (norm + 1e-6))
CLIP_TOLERANCE = 1e-3

_INF = float("inf")


class StepTracker:
    """The global gradient norm (before clipping) at every step, and the layers' weight norms.

    Parameters
    ----------
    params : the model's parameters.
    layers : per watched layer, the indices (into ``params``) of its trainable parameters.
    scaler : an enabled GradScaler divides the gradient norms by its scale; overflowed steps,
        which it skips, are left out of the statistics.
    hooks : take the gradient norm at the end of each backward (False: a model compiled in
        place, which gets no hooks; the norm is then read at :meth:`step`, after any clipping).
    ratio_every : steps between two readings of the weight norms (see below).
    fold_every : steps kept before they are reduced on the device (memory stays bounded).

    The monitor calls :meth:`start` once, :meth:`step` after every optimizer step and
    :meth:`close` at the end. A step whose backward the hooks did not see (a gradient assigned
    by hand) has its gradient read at :meth:`step`. Tracking needs all parameters on one device
    (else :attr:`enabled` is False).

    The weight norms are read every ``ratio_every`` steps and at every record; for a window of
    ``k`` steps the tracked ratio is ``| ||W_t+k|| - ||W_t|| | / (k max(||W_t||, ||W_t+k||))``,
    the mean per-step change of the norm. By the triangle inequality it never exceeds the
    largest per-step ratio ``||W_i - W_i-1|| / ||W_i-1||`` of the window while the weight norm
    inside it stays below ``max(||W_t||, ||W_t+k||)`` (a norm that grows or shrinks steadily, as
    under a learning rate far too high); it is a bound of a *sustained* ratio, which is what the
    checks judge, and a single large step is diluted by ``k`` (the sampled steps still measure
    the exact ratio). With ``k = 1`` it is the per-step bound.
    """

    def __init__(self, params: list[torch.Tensor], layers: list[list[int]], scaler: Any, *,
                 hooks: bool = True, ratio_every: int = 8, fold_every: int = 256) -> None:
        self.params = params
        self.trainable = [p for p in params if p.requires_grad]
        self.enabled = bool(self.trainable) and len({p.device for p in params}) == 1
        self.scaler, self.fold_every, self.ratio_every = scaler, fold_every, ratio_every
        self.hooks = hooks
        self._float32 = all(p.dtype == torch.float32 for p in self.trainable)
        used = sorted({i for idx in layers for i in idx})
        self._weights = [params[i] for i in used]  # read under no_grad
        col = {i: j for j, i in enumerate(used)}
        device = params[0].device if params else torch.device("cpu")
        # [params, layers] 0/1: squared parameter norms -> squared layer norms
        self._layer_cols = tuple(tuple(col[i] for i in idx) for idx in layers)
        member = [[0.0] * len(layers) for _ in used]
        for j, cols in enumerate(self._layer_cols):
            for c in cols:
                member[c][j] = 1.0
        self._member = torch.tensor(member, device=device).reshape(len(used), len(layers))
        self._ends = list(dict.fromkeys([self.trainable[0], self.trainable[-1]])) \
            if self.trainable else []  # the first and last layer: in (nearly) every graph
        self._handles: list[Any] = []
        self._fresh: list[bool] = []  # per hooked parameter: had no hook dict before start()
        # the last backward's per-parameter gradient norms and loss scale, not yet counted
        self._pending: tuple[list[torch.Tensor], Any] | None = None
        self._queued = False
        # while timed (the monitor's sampled steps): seconds (wall, cpu) of the end-of-backward
        # work, which the monitor adds to the every-step tracking's cost; no clock otherwise
        self._timed = False
        self.seconds = [0.0, 0.0]
        self._last_w = torch.zeros(0)  # the weight norms before the steps not yet folded
        self._since_w = 0               # steps since the last reading of the weight norms
        self._reset()

    @property
    def timed(self) -> bool:
        """Whether the end-of-backward work is timed (into :attr:`seconds`, reset when set)."""
        return self._timed

    @timed.setter
    def timed(self, value: bool) -> None:
        self._timed, self.seconds = value, [0.0, 0.0]

    def _reset(self) -> None:
        self._grads: list[tuple[list[torch.Tensor], Any]] = []  # per step, as _pending
        self._w: list[torch.Tensor] = []        # weight norms per reading, [watched params] each
        self._gaps: list[int] = []              # steps covered by each reading
        self._grad_run: torch.Tensor | None = None   # [max, sum] folded so far
        self._ratio_run: torch.Tensor | None = None  # largest ratio folded so far
        self.steps = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Read the first weight norms and hook the end of every backward (once, until close)."""
        if not self.enabled:
            return
        self._last_w = self._weight_norms()
        if self.hooks:
            self._fresh = [p._post_accumulate_grad_hooks is None for p in self._ends]
            self._handles = [p.register_post_accumulate_grad_hook(self._hook)
                             for p in self._ends]

    def close(self) -> None:
        self.enabled = False  # a graph that outlives the monitor calls nothing
        while self._handles:
            self._handles.pop().remove()
        for p, fresh in zip(self._ends, self._fresh):
            if fresh and not p._post_accumulate_grad_hooks:  # leave no empty hook dict behind
                p._post_accumulate_grad_hooks = None  # type: ignore[assignment]
        self._fresh = []
        self._pending, self._grads, self._w, self._gaps = None, [], [], []

    # ------------------------------------------------------------------ every step
    def _hook(self, param: torch.Tensor) -> None:  # after param.grad was updated
        if self.enabled and not self._queued:
            self._queued = True
            try:  # the engine's end-of-backward callback, as DistributedDataParallel uses
                torch.autograd.Variable._execution_engine.queue_callback(self._finish)
            except (AttributeError, RuntimeError):  # pragma: no cover - no such callback
                self._finish()

    def _finish(self) -> None:
        if not self.timed:
            self._norms()
            return
        t0, c0 = time.perf_counter(), time.thread_time()
        self._norms()
        self.seconds[0] += time.perf_counter() - t0
        self.seconds[1] += time.thread_time() - c0

    def _norms(self) -> None:
        self._queued = False
        grads = [g for p in self.trainable if (g := p.grad) is not None]
        if not grads:
            return
        # the last backward before step() wins: with accumulation, the accumulated gradient
        with torch.no_grad():  # one fused op; the global norm is taken when folding
            if self._float32:  # a gradient has its parameter's dtype: no per-tensor checks
                try:
                    self._pending = (list(torch._foreach_norm(grads)), self._scale())
                    return
                except (NotImplementedError, RuntimeError):  # a sparse gradient (Embedding)
                    pass
            self._pending = (norms(grads), self._scale())

    def _scale(self) -> Any:
        return None if self.scaler is None else loss_scale(self.scaler)

    def _weight_norms(self) -> torch.Tensor:
        with torch.no_grad():
            return torch.stack(norms(self._weights)) if self._weights \
                else torch.zeros(0, device=self._member.device)

    def step(self) -> None:
        """Count the step just finished: its gradient norm, and every ``ratio_every`` steps the
        weight norms after it."""
        self.steps += 1
        if not self.enabled:
            return
        if self._pending is None:  # no backward seen since the last step: the gradient now
            self._norms()  # (timed by the caller on sampled steps)
        if self._pending is not None:
            self._grads.append(self._pending)
            self._pending = None
        self._since_w += 1
        if self._since_w >= self.ratio_every:
            self._amortized(self._read_weights, self.ratio_every)
        if len(self._grads) >= self.fold_every or len(self._w) >= self.fold_every:
            self._amortized(self._fold, self.fold_every)

    def _amortized(self, work: Any, every: int) -> None:
        """Run ``work``, done once in ``every`` steps; when timed, only its share per step
        counts (:attr:`seconds` gets ``1/every - 1`` of its time, the caller times all)."""
        if not self._timed:
            work()
            return
        t0, c0 = time.perf_counter(), time.thread_time()
        work()
        share = 1 / every - 1
        self.seconds[0] += share * (time.perf_counter() - t0)
        self.seconds[1] += share * (time.thread_time() - c0)

    def _read_weights(self) -> None:
        self._w.append(self._weight_norms())
        self._gaps.append(self._since_w)
        self._since_w = 0

    def _fold(self) -> None:
        with torch.no_grad():
            if self._grads:
                g = self._global_norms()
                if self.scaler is not None and self.scaler.is_enabled():  # overflows: skipped
                    ok = torch.isfinite(g)
                    g, n = torch.where(ok, g, 0.0), ok.sum().float()
                else:  # a NaN norm is a blow-up: counted as inf
                    g = torch.nan_to_num(g, nan=_INF)
                    n = torch.full((), float(len(g)), device=g.device)
                part = torch.stack([g.max(), g.sum(), n])
                old = self._grad_run
                self._grad_run = part if old is None else torch.stack(
                    [torch.maximum(old[0], part[0]), old[1] + part[1], old[2] + part[2]])
                self._grads = []
            if self._w and self._weights:
                self._fold_ratios()
            if self._w:
                self._last_w, self._w, self._gaps = self._w[-1], [], []

    def _global_norms(self) -> torch.Tensor:
        """The kept steps' global gradient norms, [steps], from their per-parameter norms."""
        counts = [len(ns) for ns, _ in self._grads]
        flat = torch.stack([t for ns, _ in self._grads for t in ns]).square()
        if len(set(counts)) == 1:
            sq = flat.view(len(counts), counts[0]).sum(1)
        else:  # steps whose backward reached different parameters
            rows = torch.repeat_interleave(torch.arange(len(counts), device=flat.device),
                                           torch.tensor(counts, device=flat.device))
            sq = torch.zeros(len(counts), device=flat.device).index_add_(0, rows, flat)
        g = sq.sqrt()
        scales = [scale for _, scale in self._grads]
        if all(scale is None for scale in scales):
            return g
        return g / torch.stack([torch.as_tensor(1.0 if scale is None else scale,
                                                dtype=g.dtype, device=g.device).reshape(())
                                for scale in scales])

    def _fold_ratios(self) -> None:
        rows = torch.stack([self._last_w, *self._w])                # [readings + 1, params]
        layer = torch.sqrt(rows.square() @ self._member)            # [readings + 1, layers]
        prev, cur = layer[:-1], layer[1:]
        diff = (cur - prev).abs()
        gaps = torch.tensor(self._gaps, dtype=layer.dtype, device=layer.device)[:, None]
        base = torch.where(gaps > 1, torch.maximum(prev, cur), prev)
        ratio = torch.where(base > 0, diff / (gaps * base.clamp_min(1e-38)),
                            torch.where(diff > 0, _INF, 0.0))
        top = ratio.max() if ratio.numel() else torch.zeros((), device=ratio.device)
        top = torch.nan_to_num(top, nan=_INF)
        self._ratio_run = top if self._ratio_run is None else torch.maximum(self._ratio_run, top)

    # ------------------------------------------------------------------ at a record
    def take(self) -> TrackerTake:
        """What came since the last take: the steps counted and device tensors for the
        record's one transfer (no sync), read by :meth:`TrackerTake.finish` on the host.

        The steps not yet folded go as they are (their per-parameter gradient norms in one
        ``stack``, the weight-norm readings in another): reducing a few hundred values costs
        a few microseconds on the host after the transfer, against ~40 small device ops."""
        if self.enabled and self._since_w:  # the window ends at the record
            self._read_weights()
        tensors: list[torch.Tensor] = []
        grad, ratio = self._grad_run, self._ratio_run
        tensors += [grad] if grad is not None else []
        tensors += [ratio.reshape(1)] if ratio is not None else []
        counts = tuple(len(ns) for ns, _ in self._grads)
        scaled = any(scale is not None for _, scale in self._grads)
        gaps: tuple[int, ...] = ()
        with torch.no_grad():
            if counts:
                tensors.append(torch.stack([t for ns, _ in self._grads for t in ns]))
            if scaled:
                tensors.append(torch.stack([
                    torch.as_tensor(1.0 if scale is None else scale, dtype=torch.float32,
                                    device=self._member.device).reshape(())
                    for _, scale in self._grads]))
            if self._w and self._weights:
                tensors.append(torch.stack([self._last_w, *self._w]).reshape(-1))
                gaps = tuple(self._gaps)
        if self._w:
            self._last_w = self._w[-1]
        taken = TrackerTake(self.steps, tensors, grad is not None, ratio is not None, counts,
                            scaled, self.scaler is not None and self.scaler.is_enabled(), gaps,
                            self._layer_cols)
        self._w, self._gaps = [], []
        self._reset()
        return taken


@dataclass(frozen=True)
class TrackerTake:
    """What :meth:`StepTracker.take` hands to a record. ``tensors`` holds, in order: the
    folded ``[grad max, grad sum, grad count]`` (if ``folded_grad``), the folded largest
    ratio (if ``folded_ratio``), the per-parameter gradient norms of the ``counts`` steps not
    folded (flat), their loss scales (if ``scaled``), and the weight-norm readings
    ``[len(gaps) + 1, params]`` (flat) when ``gaps``."""

    steps: int
    tensors: list[torch.Tensor]
    folded_grad: bool
    folded_ratio: bool
    counts: tuple[int, ...]
    scaled: bool
    amp: bool
    gaps: tuple[int, ...]
    layers: tuple[tuple[int, ...], ...]  # per watched layer, its columns in the readings

    def finish(self, values: list[list[float]]) -> dict[str, float | None]:
        """The tracked statistics from the tensors' values (None where nothing was seen).

        Plain Python arithmetic: a few dozen values per record, where numpy's per-call cost
        on a cold cache (~200 us measured) would exceed the work."""
        it = iter(values)
        g_max, g_sum, g_n = next(it) if self.folded_grad else (-_INF, 0.0, 0.0)
        ratio = next(it)[0] if self.folded_ratio else None
        if self.counts:
            flat, pos, g = next(it), 0, []
            for n in self.counts:
                g.append(math.sqrt(math.fsum(v * v for v in flat[pos:pos + n])))
                pos += n
            if self.scaled:
                g = [v / scale for v, scale in zip(g, next(it))]
            if self.amp:  # overflowed steps, which the scaler skips, are left out
                g = [v for v in g if math.isfinite(v)]
            else:  # a NaN norm is a blow-up: counted as inf
                g = [_INF if math.isnan(v) else v for v in g]
            if g:
                g_max, g_sum, g_n = max(g_max, *g), g_sum + math.fsum(g), g_n + len(g)
        if self.gaps:
            top = _window_ratio(next(it), self.gaps, self.layers)
            ratio = top if ratio is None or math.isnan(ratio) else max(ratio, top)

        def num(v: float | None) -> float | None:
            return None if v is None or math.isnan(v) else v
        return {"grad_norm_max": num(g_max) if g_n else None,
                "grad_norm_mean": g_sum / g_n if g_n else None, "update_ratio_max": num(ratio)}


def _window_ratio(flat: list[float], gaps: tuple[int, ...],
                  layers: tuple[tuple[int, ...], ...]) -> float:
    """The largest windowed ratio (see :class:`StepTracker`) of the weight-norm readings
    ``[len(gaps) + 1, params]`` (flat); ``layers`` lists each layer's columns."""
    width = len(flat) // (len(gaps) + 1)
    rows = [flat[r * width:(r + 1) * width] for r in range(len(gaps) + 1)]
    norms_ = [[math.sqrt(math.fsum(row[c] * row[c] for c in cols)) for cols in layers]
              for row in rows]                                     # [readings + 1][layers]
    top = 0.0
    for k, prev, cur in zip(gaps, norms_, norms_[1:]):
        for p, c in zip(prev, cur):
            if math.isnan(p) or math.isnan(c):
                return _INF
            diff = abs(c - p)
            base = max(p, c) if k > 1 else p
            r = diff / (k * max(base, 1e-38)) if base > 0 else (_INF if diff > 0 else 0.0)
            top = max(top, r)
    return top


def between_row(tracked: TrackerTake, losses: LossTake,
                values: list[list[float]]) -> tuple[dict[str, Any], int]:
    """(the ``between`` values of one stretch, its non-finite losses) from the values of
    ``tracked.tensors`` then ``losses.tensors``."""
    n = len(tracked.tensors)
    bad, loss_max, loss_mean = losses.finish(values[n:])
    row = {"count": tracked.steps, **tracked.finish(values[:n]), "loss_max": loss_max,
           "loss_mean": loss_mean}
    return row, bad


def append_between(history: Any, tracked: TrackerTake, losses: LossTake, rec: Any) -> None:
    """Append to ``history.between`` what happened since the previous record (from a
    :class:`~explain.monitor._record.StepRecord` whose ``extra`` holds the values of
    ``tracked.tensors`` then ``losses.tensors``), add the non-finite losses, and note in
    ``history.meta`` whether the loop clipped the gradient of this record."""
    h = history
    row, bad = between_row(tracked, losses, rec.extra)
    h.nonfinite["loss"] += bad
    for key in BETWEEN_KEYS:
        h.between[key].append(row[key])
    before, after = rec.grad_norm_before, rec.grad_norm_after
    clipped = (before is not None and after is not None and math.isfinite(before)
               and after < before * (1 - CLIP_TOLERANCE))
    h.meta["clipped_records"] = h.meta.get("clipped_records", 0) + int(clipped)
    h.meta["clipping"] = h.meta["clipped_records"] > 0


def finish_tail(history: Any, tracked: TrackerTake, losses: LossTake, last_step: int) -> None:
    """At close: what happened after the last record (steps no record covers), read with one
    sync, into ``history.meta["between_tail"]`` (the ``between`` keys plus ``"step"``, the last
    step; None when the last step was a record), and its non-finite losses counted."""
    values = [t.tolist() for t in tracked.tensors + losses.tensors]
    row, bad = between_row(tracked, losses, values)
    history.nonfinite["loss"] += bad
    history.meta["between_tail"] = {"step": last_step, **row} if tracked.steps else None
