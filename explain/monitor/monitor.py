"""The training monitor: per-layer health of a training run at a small, bounded overhead.

Only *sampled* steps cost much: the forward hooks are registered just for the step that will
be sampled and removed right after it, a copy of the weights is taken just before it (for the
update ratio), and all statistics of a sampled step reach the CPU in one synchronisation.
An unsampled ``step()`` keeps the loss tensor and updates running statistics on the device (the
global gradient norm before clipping, the layers' weight norms: two fused norms per step, see
``explain.monitor._between``) with no host synchronisation and no clock; the next record reads
them, so a spike between two sampled steps is seen (``History.between``).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from explain.errors import InvalidInputError
from explain.monitor import _distributed, _layers, _setup
from explain.monitor._between import LossCounter, StepTracker, finish_tail
from explain.monitor._pacer import Pacer
from explain.monitor._record import BackwardGradNorms, SampledStep, SnapshotPlan, collect
from explain.monitor._take import append_record
from explain.monitor._temporal import TemporalRecorder, sequence_layout
from explain.monitor.history import History

__all__ = ["TrainingMonitor"]


class TrainingMonitor:
    """Record per-layer gradient, weight, update and activation statistics while training.

    Use it as a context manager around the training loop (hooks are removed on exit, also when
    the loop raises), call :meth:`step` once per optimizer step and :meth:`log_epoch` once per
    epoch; read :attr:`history`.

    Parameters
    ----------
    model : the model being trained.
    every : sample every ``every``-th step (steps 0, every, 2 * every, ...), or None to choose
        the interval automatically so that the monitor costs about ``budget`` of the training time.
    scaler : the ``torch.amp.GradScaler`` of mixed-precision training: gradient norms (and
        the BPTT curve) are divided by the loss scale, so they are true gradient norms; with a
        scaler, non-finite gradients (overflows that the scaler skips) are counted in
        ``meta["amp_overflow_values"]``, not as ``nonfinite``.
    include_norm : also watch norm layers (BatchNorm, LayerNorm, ...).
    temporal : record the BPTT curve of sequence models (recurrent or attention modules, no
        convolutions; float input ``[batch, time, features]``, or ``[time, batch, features]``
        when they are not batch-first) at most once per epoch, at a sampled step. It is read
        from the step's own backward pass (the model's input is ``x + 0`` with a zero that
        requires grad, so the gradient reaches it) over the whole batch, assuming the loss is
        a batch mean. If that gradient does not arrive, an extra pass on ``temporal_samples``
        sequences computes it; with ``every=None`` the first always, later ones only while
        they take at most a quarter of ``budget``. ``history.meta["temporal_source"]`` says
        which.
    temporal_samples : sequences used by the extra BPTT pass.
    budget : target fraction of training time spent by the monitor (sampled steps and the
        every-step tracking) when ``every`` is None.
    max_every : the largest automatic interval.
    max_snapshot_bytes : the most memory the weight copy for update ratios may take at a sampled
        step (default 1 GiB; None for no limit). Above it, the layers take turns: each record
        has update ratios for the layers that fit, the next record continues with the others.
    history : an earlier history to continue (resumed training); steps continue its count.

    Notes
    -----
    Gradient, weight and activation statistics (and their non-finite counts) are taken at
    sampled steps; non-finite losses are counted at every step that passes ``loss``. Every
    step, sampled or not, also updates running statistics on the device (no sync), read at the
    next record into ``history.between``: the largest and mean global gradient norm, loss
    (when ``loss`` is given) and a lower bound of the largest update-to-weight ratio since the
    previous record (the steps after the last record go to ``meta["between_tail"]`` at
    close). Gradient norms are taken as backward accumulates them, so they are the norms
    before any gradient clipping in the loop (a gradient assigned by hand is read at
    :meth:`step`); ``meta["clipping"]`` says whether the loop clipped (a norm when
    ``optimizer.step()`` begins, or else at :meth:`step`, below the one backward produced, at
    a sampled step). With
    gradient accumulation call :meth:`step` once per optimizer step: the activation statistics
    come from the first forward pass (with gradients enabled) of the sampled step; forward
    passes under ``torch.no_grad()`` (validation) are ignored. ``frac_dead`` counts units that
    are zero for every sample of that one batch, so small batches overstate it.

    Modules inside code compiled by ``torch.compile`` are never hooked (the compiler would trace
    the hooks into its graphs): they get no activation statistics; gradient, weight and update
    statistics are recorded as usual. A model compiled in place (``model.compile()``) also
    gets no BPTT curve and its gradient norms are read at :meth:`step` (after any clipping).

    With ``every=None`` the interval adapts (see ``explain.monitor._pacer.Pacer``): sampling
    and the every-step tracking take about ``budget`` of the training time over the run. The
    first five records come once per epoch even when that costs more (tiny models); later
    ones get what the tracking leaves of the budget (at least a quarter) once those are paid
    back. ``history.meta["tracking_share"]`` is the tracking's measured share of a step.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    >>> with TrainingMonitor(model, every=2) as mon:
    ...     for step in range(5):
    ...         opt.zero_grad()
    ...         loss = nn.functional.cross_entropy(model(x), y)
    ...         loss.backward()
    ...         opt.step()
    ...         mon.step(loss=loss.detach())
    ...     mon.log_epoch(train_loss=loss.item())
    >>> mon.history.steps, list(mon.history.layers), mon.history.layer_info["0"]["activation"]
    ([0, 2, 4], ['0', '2'], 'relu')
    """

    _track_between = True  # internal: False turns the every-step tracking off (benchmarks)

    def __init__(self, model: nn.Module, *, every: int | None = None, scaler: Any = None,
                 include_norm: bool = False, temporal: bool = True, temporal_samples: int = 16,
                 budget: float = 0.01, max_every: int = 200,
                 max_snapshot_bytes: int | None = 2**30,
                 history: History | None = None) -> None:
        self.model = model
        self.every = every
        self.scaler = scaler
        self.include_norm = include_norm
        self.temporal = temporal
        self.temporal_samples = temporal_samples
        self.budget = budget
        self.max_every = max_every
        self.max_snapshot_bytes = max_snapshot_bytes
        self.history = history if history is not None else History()
        self._started = self._closed = False
        self._handles: list[Any] = []

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> TrainingMonitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> TrainingMonitor:
        """Validate the settings, find the layers and arm the hooks for step 0."""
        if self._closed:
            raise InvalidInputError(
                "This TrainingMonitor is closed. Got a call to start() after close(); create a "
                "new TrainingMonitor(model, history=old.history) to continue recording.")
        if self._started:
            return self
        self._validate()
        self.model = _distributed.unwrap(self.model)  # DDP: the user's module, its layer names
        self._ddp = _distributed.active()   # DDP: gradients read at step(), after all-reduce
        self._layers = _layers.find_layers(self.model, self.include_norm)
        self._activations = _layers.find_activations(self.model)
        self._params: list[torch.Tensor] = list(self.model.parameters())
        self._grad_norms = BackwardGradNorms()
        self._compiled = _layers.compiled_modules(self.model)
        # (module, forward hook) pairs, made once and kept out of torch.compile's tracing: the
        # same hook objects at every sampled step, never on a module inside compiled code
        off = _layers.untraced
        targets = [(spec.module, self._layer_hook(spec)) for spec in self._layers]
        targets += [(module, self._act_hook(kind)) for module, kind in self._activations]
        self._hook_targets = [(m, off(h)) for m, h in targets if id(m) not in self._compiled]
        self._model_hooks = (None if id(self.model) in self._compiled
                             else (off(self._input_hook), off(self._output_hook)))
        index = {id(p): i for i, p in enumerate(self._params)}
        self._layer_params = [[index[id(p)] for p in spec.params] for spec in self._layers]
        self._snapshots = SnapshotPlan(self._params, self._layer_params, self.max_snapshot_bytes)
        self._step = int(self.history.meta.get("total_steps", 0))
        self._pacer = Pacer(_distributed.interval(self.every, self.max_every), budget=self.budget, max_every=self.max_every,
                            start=self._step)
        self._sequence = any(isinstance(m, nn.RNNBase) for m in self.model.modules())
        self._losses = LossCounter()           # non-finite, largest and mean loss, at records
        # under DDP the gradient is read at step(), after DDP's all-reduce (no backward hooks)
        self._tracker = StepTracker(self._params, self._snapshots.layers, self.scaler,
                                    hooks=self._model_hooks is not None and not self._ddp)
        self._tracker.enabled &= self._track_between
        self._tracker.start()                  # gradient and weight norms of every step
        self._seconds = 0.0                    # measured wall time of the sampled steps' work
        self._state = self._new_state()        # what the next sampled step gathers
        self._input: tuple[tuple, dict] | None = None  # the sampled step's model input
        self._epoch_start = self._step
        # a backward to tap, and no extra pass through compiled code
        tappable = any(p.requires_grad for p in self._params) and self._model_hooks is not None
        self._temporal = TemporalRecorder(self.temporal and tappable, self.temporal_samples,
                                          self.budget, auto=self.every is None,
                                          time_dim=sequence_layout(self.model))
        self._t_start = time.perf_counter()
        self._t_last = (self._t_start, time.thread_time())
        self._t_last_step = self._step  # where the stretch timed by _t_last starts
        self._prepare_history()
        self._started = True
        self._arm()
        return self

    def close(self) -> None:
        """Remove every hook and finish the history; safe to call more than once."""
        self._disarm()
        if self._started and not self._closed:
            # the steps after the last record: their spikes must not hide either
            finish_tail(self.history, self._tracker.take(), self._losses.take(), self._step - 1)
            self._tracker.close()
            meta = self.history.meta
            meta["total_steps"] = self._step
            meta["every_final"] = self._pacer.every
            est = self._pacer.estimated_overhead()
            meta["overhead_estimate"] = None if est is None else round(est, 5)
            meta["tracking_share"] = round(self._pacer.tracking_share(), 5)
            meta["temporal_seconds"] = round(self._temporal.seconds, 4)
            meta["monitor_seconds"] = round(self._seconds + self._temporal.seconds, 4)
            # drop references to the last batch's tensors and the weight snapshot
            self._state, self._input = self._new_state(), None
            self._temporal.tap.reset()
        self._closed = True

    @property
    def every_(self) -> int | None:
        """The sampling interval in use (None before :meth:`start`)."""
        return self._pacer.every if self._started else None

    # ------------------------------------------------------------------ per step / epoch
    def step(self, loss: Any = None, target: torch.Tensor | None = None) -> None:
        """Mark the end of one optimizer step (call it after ``optimizer.step()``).

        Parameters
        ----------
        loss : the step's loss (a tensor or float); recorded at sampled steps; at every step
            its non-finite values are counted and its largest and mean value tracked.
        target : the batch labels, used for the BPTT curve of sequence models (optional).
        """
        if not self._started:
            self.start()
        if self._closed:
            raise InvalidInputError(
                "TrainingMonitor.step() was called after close(). Call it inside the "
                "'with TrainingMonitor(model) as mon:' block.")
        k = self._step
        pacer = self._pacer
        sampled = pacer.is_sampled(k)
        if sampled:
            self._sample(k, loss, target)
        else:  # unsampled steps read no clock
            self._losses.add(loss)
            self._tracker.step()
        self._step = k + 1
        arm = pacer.is_sampled(self._step)
        if arm and not sampled:
            # the end of a stretch of unsampled steps, whose step() reads no clock: its mean
            now, now_cpu = time.perf_counter(), time.thread_time()
            n = self._step - self._t_last_step
            if n > 0:
                pacer.record_period((now - self._t_last[0]) / n, (now_cpu - self._t_last[1]) / n)
        if arm:
            self._arm()
        if arm or sampled:  # a stretch starts after this step (after the next, if sampled)
            self._t_last = (time.perf_counter(), time.thread_time())
            self._t_last_step = self._step + 1 if arm else self._step

    def _sample(self, k: int, loss: Any, target: Any) -> None:
        """The sampled step's record; its every-step work and its own cost timed for the pacer."""
        now, now_cpu = time.perf_counter(), time.thread_time()
        self._losses.add(loss)
        self._tracker.step()
        track = self._tracker.seconds
        self._pacer.record_tracking(track[0] + time.perf_counter() - now,
                                    track[1] + time.thread_time() - now_cpu)
        self._tracker.timed = False
        now, now_cpu = time.perf_counter(), time.thread_time()
        self._disarm()
        self._record(k, loss, target)
        hooks = self._grad_norms.seconds  # wall time in backward hooks, counted as CPU too
        wall = self._spent[0] + hooks + time.perf_counter() - now - self._last_temporal[0]
        cpu = self._spent[1] + hooks + time.thread_time() - now_cpu - self._last_temporal[1]
        self._pacer.record_cost(wall, cpu)
        self._seconds += wall
        self._pacer.advance(k)

    def log_epoch(self, **metrics: Any) -> None:
        """Append one epoch row (``epoch`` defaults to the next number); unknown keys are kept."""
        self.history.log_epoch(**metrics)
        if self._started and not self._closed:
            # where each epoch ends, so checks can say in which epoch a step lies
            self.history.meta.setdefault("epoch_end_steps", []).append(self._step)
            self._pacer.set_epoch_length(self._step - self._epoch_start, self._step)
            self._epoch_start = self._step
            if self._pacer.is_sampled(self._step) and not self._handles:
                self._arm()  # the interval just shrank: the next step is sampled
        if self._started:
            self._temporal.done_epoch = False

    # ------------------------------------------------------------------ internals
    def _validate(self) -> None:
        _setup.validate(self.model, self.every, self.temporal_samples, self.max_every,
                        self.max_snapshot_bytes, self.budget, self.history, self.scaler)

    def _prepare_history(self) -> None:
        _setup.prepare_history(self.history, self.model, self._layers, _setup.run_meta(
            self.model, self._params, every=self.every, budget=self.budget,
            scaler=self.scaler, sequence=self._sequence, include_norm=self.include_norm,
            compiled=len(self._compiled), snapshot_limited=self._snapshots.limited,
            temporal_samples=self.temporal_samples))

    def _arm(self) -> None:
        """Register the hooks and take the weight snapshot for the next (sampled) step."""
        t0, c0 = time.perf_counter(), time.thread_time()
        self._last_layer: _layers.LayerSpec | None = None
        self._input = None
        self._busy = False
        with torch.no_grad():
            chosen = self._snapshots.next()
            self._state = self._new_state([p.detach().clone() if i in chosen else None
                                           for i, p in enumerate(self._params)])
        for module, hook in self._hook_targets:
            self._handles.append(module.register_forward_hook(hook))
        if self._model_hooks is not None:
            before, after = self._model_hooks
            self._handles.append(self.model.register_forward_pre_hook(before, with_kwargs=True))
            self._handles.append(self.model.register_forward_hook(after))
        self._grad_norms.arm(self._params, self.scaler)
        self._tracker.timed = True  # times its end-of-backward work on the sampled step
        self._handles.append(register_optimizer_step_pre_hook(self._grad_norms.before_optimizer))
        # the monitor's own seconds (wall, cpu) for this sampled step; hooks add theirs
        self._spent = [time.perf_counter() - t0, time.thread_time() - c0]

    def _new_state(self, snapshot: list[torch.Tensor | None] | None = None) -> SampledStep:
        return SampledStep(self._params, self._layers, self._layer_params, snapshot=snapshot,
                           amp=bool(self.scaler is not None and self.scaler.is_enabled()))

    def _disarm(self) -> None:
        while self._handles:
            self._handles.pop().remove()

    def _active(self) -> bool:
        return not self._busy and torch.is_grad_enabled()

    def _layer_hook(self, spec: _layers.LayerSpec):
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            if not self._active():
                return
            self._last_layer = spec
            y = _layers.first_tensor(output)
            if y is not None and spec.index not in self._state.raw:  # statistics later, if needed
                self._state.raw[spec.index] = (y, y._version)
        return hook

    def _act_hook(self, kind: str):
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            spec = self._last_layer
            if not self._active() or spec is None or spec.intrinsic or spec.index in self._state.acts:
                return
            t0, c0 = time.perf_counter(), time.thread_time()
            y = _layers.first_tensor(output)
            if y is not None:
                stats = _layers.activation_stats(y, kind, spec.unit_dim)
                self._state.acts[spec.index] = (kind, stats, y, y._version)
            self._spent[0] += time.perf_counter() - t0
            self._spent[1] += time.thread_time() - c0
        return hook

    def _input_hook(self, module: nn.Module, args: Any, kwargs: Any) -> Any:
        if not self._active() or self._input is not None:
            return None
        self._input = (args, kwargs)
        t0, c0 = time.perf_counter(), time.thread_time()
        tapped = self._temporal.tap_input(args, self.history, self.scaler)
        self._spent[0] += time.perf_counter() - t0
        self._spent[1] += time.thread_time() - c0
        return None if tapped is None else ((tapped, *args[1:]), kwargs)

    def _output_hook(self, module: nn.Module, args: Any, output: Any) -> None:
        if self._active() and not self._ddp:  # this forward's graph exists: hook its accumulators
            self._handles += self._grad_norms.attach()

    def _record(self, k: int, loss: Any, target: Any) -> None:
        self._last_temporal = (0.0, 0.0)
        self._state.backward_norms = self._grad_norms.values
        self._state.applied_norms = self._grad_norms.applied
        losses, tracked = self._losses.take(), self._tracker.take()
        self._state.extra = tracked.tensors + losses.tensors  # read in the record's one transfer
        rec = collect(self._state, loss)
        h = self.history
        append_record(h, k, rec, self._layers, tracked, losses)
        self._state = self._new_state()  # drop the snapshot and the batch's tensors
        self._temporal.take_tapped(k, h)  # the BPTT curve of this step's own backward
        elapsed = time.perf_counter() - self._t_start
        inputs = self._input
        if inputs is not None and self._temporal.extra_due(inputs, h, elapsed):
            self._busy = True  # the hooks ignore the extra pass
            try:
                self._last_temporal = self._temporal.extra_pass(
                    k, self.model, inputs[0][0], target, h)
            finally:
                self._busy = False
        self._input = None

