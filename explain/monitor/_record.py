"""The statistics of one sampled step, gathered with fused ops and a single synchronisation."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.autograd.graph import get_gradient_edge

from explain.monitor import _distributed
from explain.monitor._layers import (
    NUM_ACT_STATS,
    SATURATING_KINDS,
    ZERO_KINDS,
    LayerSpec,
    activation_stats,
    count_nonfinite,
    finish_stats,
    loss_scale,
)

__all__ = ["BackwardGradNorms", "SnapshotPlan", "SampledStep", "StepRecord",
           "collect", "norms"]


@dataclass
class SampledStep:
    """What the monitor gathered for one sampled step: the input of :func:`collect`.

    The monitor owns it and fills it while the step runs (hooks write ``acts`` and ``raw``).

    Attributes
    ----------
    params : the model's parameters, in ``model.parameters()`` order.
    layers : the watched layers.
    layer_params : per watched layer, the indices of its parameters in ``params``.
    backward_norms : gradient norms taken as backward produced them (parameter index -> 0-d).
    applied_norms : gradient norms when ``optimizer.step()`` began (after any clipping, before
        a ``zero_grad()`` that may come before the monitor's ``step()``).
    snapshot : the weights copied before the step (None where not copied), for update ratios.
    acts : per layer index, ``(activation kind, stats tensor, output, its version)`` from an
        activation module's hook.
    raw : per layer index, the layer's own output and its version.
    amp : whether an enabled GradScaler skips steps whose gradients overflowed.
    extra : 1-d float32 tensors read in the same transfer (the running statistics between
        records); their values come back in :attr:`StepRecord.extra`.
    """

    params: list[torch.Tensor]
    layers: list[LayerSpec]
    layer_params: list[list[int]]
    backward_norms: dict[int, torch.Tensor] = field(default_factory=dict)
    applied_norms: dict[int, torch.Tensor] = field(default_factory=dict)
    snapshot: list[torch.Tensor | None] | None = None
    acts: dict[int, tuple[str | None, torch.Tensor, torch.Tensor, int]] = field(
        default_factory=dict)
    raw: dict[int, tuple[torch.Tensor, int]] = field(default_factory=dict)
    amp: bool = False
    extra: list[torch.Tensor] = field(default_factory=list)


@dataclass(frozen=True)
class StepRecord:
    """What :func:`collect` read from a sampled step.

    Attributes
    ----------
    loss : the step's loss (None when not given).
    layers : per layer name, one value per metric of ``LAYER_METRICS``.
    nonfinite : element counts of non-finite gradients, weights and activations.
    activation_kinds : per layer index, the activation observed (overrides the static guess).
    amp_overflow_values : non-finite gradient values that an enabled GradScaler skips.
    grad_norm_before, grad_norm_after : the global norm of the gradients taken as backward
        produced them, and of the same gradients at ``step()`` (lower when the loop clipped;
        None when backward norms were not taken).
    extra : the values of :attr:`SampledStep.extra`, one list per tensor.
    """

    loss: float | None
    layers: dict[str, dict[str, float | None]]
    nonfinite: dict[str, int]
    activation_kinds: dict[int, str | None]
    amp_overflow_values: int = 0
    grad_norm_before: float | None = None
    grad_norm_after: float | None = None
    extra: list[list[float]] = field(default_factory=list)


def norms(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """L2 norm of each tensor (float32, 0-d, on its device), fused where torch allows."""
    if not tensors:
        return []
    dense = [t.coalesce().values() if t.is_sparse else t for t in tensors]
    if all(t.dtype == torch.float32 for t in dense):
        try:
            return list(torch._foreach_norm(dense))
        except (RuntimeError, AttributeError, TypeError):  # pragma: no cover - exotic tensors
            pass
    # mixed or other dtypes: half precision accumulates in float32, results are float32
    return [torch.linalg.vector_norm(
        t, dtype=torch.float32 if t.dtype in (torch.float16, torch.bfloat16) else None).float()
        for t in dense]


class SnapshotPlan:
    """Which parameters to copy before a sampled step (for the update ratio), within a memory
    limit: the trainable parameters of the watched layers. When they do not all fit, the layers
    take turns: each plan starts with the first layer the previous one left out, so every layer
    no larger than the limit gets update ratios at some records."""

    def __init__(self, params: list[torch.Tensor], layer_params: list[list[int]],
                 limit: int | None) -> None:
        self.layers = [[i for i in idx if params[i].requires_grad] for idx in layer_params]
        self.sizes = [sum(params[i].numel() * params[i].element_size() for i in idx)
                      for idx in self.layers]
        self.limited = limit is not None and sum(self.sizes) > limit
        self.limit = limit
        self._all = {i for idx in self.layers for i in idx}
        self._start = 0

    def next(self) -> set[int]:
        """The parameter indices to copy for the next sampled step."""
        limit = self.limit
        if not self.limited or limit is None:
            return self._all
        n, used, chosen, left_out = len(self.layers), 0, set(), None
        for j in range(n):
            layer = (self._start + j) % n
            if used + self.sizes[layer] <= limit:
                used += self.sizes[layer]
                chosen.update(self.layers[layer])
            elif left_out is None and self.sizes[layer] <= limit:
                left_out = layer
        if left_out is not None:
            self._start = left_out
        return chosen


class BackwardGradNorms:
    """Gradient norms taken as backward accumulates them, before the loop clips or edits them.

    Armed for sampled steps only. After each forward pass of a sampled step, :meth:`attach`
    puts a hook on the gradient accumulator node of every trainable parameter in that pass's
    graph; the nodes die with the graph, so nothing stays behind on the parameters (a
    post-accumulate-grad hook would: ~0.3 us per parameter on every later backward). The first
    hook of a backward queues a callback that, at the end of that backward, takes the norms of
    all accumulated gradients in one fused op (no sync); with gradient accumulation the last
    backward gives the norm of the accumulated gradient. With an enabled GradScaler the norms are
    divided by the scale of that backward. Parameters whose hook did not run (a gradient
    assigned by hand) are read from ``p.grad`` at ``step()``.
    """

    def __init__(self) -> None:
        self.values: dict[int, torch.Tensor] = {}
        self.applied: dict[int, torch.Tensor] = {}  # at optimizer.step(), after clipping
        self.seconds = 0.0

    def arm(self, params: list[torch.Tensor], scaler: Any) -> None:
        self.values, self.applied, self.seconds = {}, {}, 0.0
        self._params, self._queued = params, False
        self._fired: list[int] = []
        self._scaler = scaler

    def attach(self) -> list[Any]:
        """Hook the gradient accumulators of the graph just built; returns the handles."""
        t0 = time.perf_counter()
        handles = [get_gradient_edge(p).node.register_hook(self._hook(i))
                   for i, p in enumerate(self._params) if p.requires_grad]
        self.seconds += time.perf_counter() - t0
        return handles

    def before_optimizer(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        """A global optimizer-step pre-hook (sampled steps only): the norms of the gradients
        the optimizer applies, after any clipping, in one fused op (no sync)."""
        t0 = time.perf_counter()
        ids = {id(p) for group in optimizer.param_groups for p in group["params"]}
        idx = [i for i, p in enumerate(self._params) if id(p) in ids and p.grad is not None]
        if idx:
            with torch.no_grad():
                values = norms([self._params[i].grad.detach() for i in idx])  # type: ignore[union-attr]
            self.applied.update(zip(idx, values))
        self.seconds += time.perf_counter() - t0

    def _hook(self, i: int):
        def hook(grad_inputs: Any, grad_outputs: Any) -> None:  # after p.grad was updated
            self._fired.append(i)
            if not self._queued:
                self._queued = True
                try:  # the engine's end-of-backward callback, as DistributedDataParallel uses
                    torch.autograd.Variable._execution_engine.queue_callback(self._finish)
                except (AttributeError, RuntimeError):  # pragma: no cover - no such callback
                    self._finish()
        return hook

    def _finish(self) -> None:
        t0 = time.perf_counter()
        params = self._params
        grads = {i: g.detach() for i in dict.fromkeys(self._fired)
                 if (g := params[i].grad) is not None}
        idx = list(grads)
        self._fired, self._queued = [], False
        if idx:
            with torch.no_grad():
                values = norms(list(grads.values()))
                scale = loss_scale(self._scaler)
                if scale is not None:
                    values = list(torch._foreach_div(values, scale))
            self.values.update(zip(idx, values))
        self.seconds += time.perf_counter() - t0


def _gather(scalars: list[torch.Tensor], vectors: list[torch.Tensor]) -> list[float]:
    """Values of 0-d then of 1-d float32 tensors, in order, with one transfer (per device)."""
    tensors = scalars + vectors
    if not tensors:
        return []
    if len({t.device for t in tensors}) > 1:
        scalars, vectors = [t.cpu() for t in scalars], [t.cpu() for t in vectors]
    parts = ([torch.stack(scalars)] if scalars else []) + vectors
    return _distributed.mean_over_ranks(torch.cat(parts)).tolist()  # DDP: one all_reduce


def _combine(values: list[float | None]) -> float | None:
    """The L2 norm of a set of tensors from their norms (None when there is none)."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    return math.sqrt(math.fsum(v * v for v in present))


def collect(state: SampledStep, loss: Any) -> StepRecord:
    """Per-layer metrics of the sampled step, non-finite counts and observed activation kinds."""
    params = state.params
    with torch.no_grad():
        grads = {i: g.detach() for i, p in enumerate(params) if (g := p.grad) is not None}
        taken = state.backward_norms  # as backward produced them (before any clipping)
        # also where the loop already called zero_grad() (set_to_none) before step()
        grad_idx = sorted(set(grads) | set(taken))
        now_idx = list(grads)
        now = dict(zip(now_idx, norms([grads[i] for i in now_idx])))  # after any clipping
        g_norms = [taken[i] if i in taken else now[i] for i in grad_idx]
        # after clipping: as the optimizer got them, else as step() finds them
        applied = {**now, **state.applied_norms}
        clip_idx = [i for i in grad_idx if i in taken and i in applied]
        after = [applied[i] for i in clip_idx]
        w_norms = norms([p.detach() for p in params])
        upd_idx, d_norms, p_norms = _update_norms(state)
        kinds, act_tensors, act_refs = _activations(state)
        loss_t = loss.detach().float().mean() if isinstance(loss, torch.Tensor) else None
        extra = [loss_t] if loss_t is not None else []
        flat = _gather(g_norms + w_norms + d_norms + p_norms + after + extra,
                       act_tensors + [t.float() for t in state.extra])

    pos = 0

    def take(n: int) -> list[float]:
        nonlocal pos
        out = flat[pos:pos + n]
        pos += n
        return out

    g_list, w_list = take(len(g_norms)), take(len(w_norms))
    d_list, p_list = take(len(d_norms)), take(len(p_norms))
    after_list = take(len(after))
    loss_value = take(1)[0] if loss_t is not None else (float(loss) if _is_number(loss) else None)
    act_by_layer = {i: finish_stats(take(NUM_ACT_STATS), kinds[i], y, y._version == version)
                    for i, (y, version) in act_refs.items()}
    extra_values = [take(t.numel()) for t in state.extra]

    grad_norm: list[float | None] = [None] * len(params)
    for i, v in zip(grad_idx, g_list):
        grad_norm[i] = v
    before_total = _combine([grad_norm[i] for i in clip_idx])
    after_total = _combine(list(after_list))
    upd: dict[int, tuple[float, float]] = {i: (d, p) for i, d, p in zip(upd_idx, d_list, p_list)}
    nonfinite, amp_overflow = _count_nonfinite(state, grad_idx, g_list, w_list)

    row = _rows(state, grad_norm, w_list, upd, kinds, act_by_layer)
    for spec in state.layers:  # a non-finite activation: count its values
        act = act_by_layer.get(spec.index)
        if act is not None and not all(map(math.isfinite, act[:2])):
            nonfinite["activation"] += count_nonfinite(act_refs[spec.index][0])
    return StepRecord(loss_value, row, nonfinite, kinds, amp_overflow,
                      grad_norm_before=before_total, grad_norm_after=after_total,
                      extra=extra_values)


def _update_norms(state: SampledStep) -> tuple[list[int], list[torch.Tensor],
                                                list[torch.Tensor]]:
    """Indices of the parameters with a snapshot, ``||W - W_prev||`` and ``||W_prev||`` of each
    (device tensors; read with the rest of the record)."""
    params = state.params
    snap = state.snapshot or [None] * len(params)
    before = {i: s for i, s in enumerate(snap) if s is not None
              and params[i].requires_grad and s.shape == params[i].shape}
    upd_idx = list(before)
    if not upd_idx:
        return [], [], []
    cur = [params[i].detach() for i in upd_idx]
    prev = [before[i] for i in upd_idx]
    return upd_idx, norms(list(torch._foreach_sub(cur, prev))), norms(prev)


def _activations(state: SampledStep) -> tuple[dict[int, str | None], list[torch.Tensor],
                                               dict[int, tuple[torch.Tensor, int]]]:
    """Per watched layer with an output this step: its kind, its statistics tensor (device) and
    the output with its version (to tell later whether it was overwritten in place)."""
    kinds: dict[int, str | None] = {}
    act_tensors: list[torch.Tensor] = []
    act_refs: dict[int, tuple[torch.Tensor, int]] = {}
    for spec in state.layers:
        if spec.index in state.acts:
            kind, stats, y, version = state.acts[spec.index]
        elif spec.index in state.raw and state.raw[spec.index][0]._version == \
                state.raw[spec.index][1]:  # the layer's own output, unchanged since
            kind, y = spec.intrinsic, state.raw[spec.index][0]
            version = y._version
            stats = activation_stats(y, kind, spec.unit_dim)
        else:
            continue
        kinds[spec.index] = kind
        act_tensors.append(stats)
        act_refs[spec.index] = (y, version)
    return kinds, act_tensors, act_refs


def _rows(state: SampledStep, grad_norm: list[float | None], w_list: list[float],
          upd: dict[int, tuple[float, float]], kinds: dict[int, str | None],
          act_by_layer: dict[int, Any]) -> dict[str, dict[str, float | None]]:
    """Layer name -> its metrics of this record (norms combined over the layer's parameters)."""
    row: dict[str, dict[str, float | None]] = {}
    for spec, idx in zip(state.layers, state.layer_params):
        rec = {"grad_norm": _combine([grad_norm[i] for i in idx]),
               "weight_norm": _combine([w_list[i] for i in idx])}
        pairs = [upd[i] for i in idx if i in upd]
        if pairs:
            diff = _combine([d for d, _ in pairs]) or 0.0
            base = _combine([p for _, p in pairs])
            rec["update_ratio"] = diff / base if base else (0.0 if diff == 0 else math.inf)
        else:
            rec["update_ratio"] = None
        rec.update(_activation_row(kinds.get(spec.index), act_by_layer.get(spec.index)))
        row[spec.name] = rec
    return row


def _activation_row(kind: str | None, stats: list[float] | None) -> dict[str, float | None]:
    if stats is None:
        return {"act_mean": None, "act_std": None, "frac_zero": None, "frac_saturated": None,
                "frac_dead": None}
    mean, std, zero, sat, dead = stats
    return {"act_mean": mean, "act_std": std,
            "frac_zero": zero if kind in ZERO_KINDS else None,
            "frac_saturated": sat if kind in SATURATING_KINDS else None,
            "frac_dead": dead if kind in ZERO_KINDS else None}


def _count_nonfinite(state: SampledStep, grad_idx: list[int], g_list: list[float],
                     w_list: list[float]) -> tuple[dict[str, int], int]:
    """Exact element counts, computed only for tensors whose norm is not finite, and the
    non-finite gradient values an enabled GradScaler skips (counted apart)."""
    params = state.params
    counts = {"grad": 0, "weight": 0, "activation": 0}
    amp_overflow = 0
    for i, v in zip(grad_idx, g_list):
        if not math.isfinite(v):
            grad = params[i].grad
            n = 0 if grad is None else int((~torch.isfinite(grad.detach())).sum())
            if state.amp:  # an overflow the GradScaler handles by skipping the step
                amp_overflow += n
            else:
                counts["grad"] += n
    for p, v in zip(params, w_list):
        if not math.isfinite(v):
            counts["weight"] += int((~torch.isfinite(p.detach())).sum())
    return counts, amp_overflow


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)
