"""What happened between two records: running statistics of every step, kept on the device
(what a record reads from them, and the rows it writes: :mod:`explain.monitor._take`).

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

import time
from typing import Any

import torch

from explain.monitor._layers import loss_scale
from explain.monitor._losses import LossCounter, LossTake
from explain.monitor._record import norms
from explain.monitor._take import (
    BETWEEN_KEYS,
    CLIP_TOLERANCE,
    TrackerTake,
    append_between,
    between_row,
    finish_tail,
)

__all__ = ["LossCounter", "LossTake", "StepTracker", "TrackerTake", "BETWEEN_KEYS", "CLIP_TOLERANCE", "append_between",
           "between_row", "finish_tail"]

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
