"""The BPTT curve of a sequence model: the norm of d loss / d input at each time step.

Two ways to get it. :class:`InputGradTap` reads it from the user's own training step: the input
of the sampled forward pass becomes ``x + 0`` with a zero that requires grad, so the user's
``loss.backward()`` also computes ``d loss / d x`` (one input-sized add and the input gradient
of the first layer; no extra pass). When that gradient never arrives (a loop that calls
``torch.autograd.grad`` on the parameters only, a model that detaches its input),
:func:`temporal_curve` runs a separate forward/backward pass on a small slice of the batch, which
leaves the user's parameter gradients, the model's train/eval mode, its buffers (BatchNorm
statistics) and the random number generators (dropout) exactly as they were.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from explain.monitor._layers import first_tensor, loss_scale

__all__ = ["InputGradTap", "TemporalRecorder", "temporal_curve", "curve_from_grad",
           "is_sequence_input", "sequence_layout"]


def is_sequence_input(x: object) -> bool:
    """A batch of sequences: a float tensor ``[batch, time, features]``."""
    return isinstance(x, torch.Tensor) and x.is_floating_point() and x.dim() == 3


def sequence_layout(model: nn.Module) -> int | None:
    """The time dimension of a sequence model's input: 1 when its recurrent and attention
    modules are batch-first (``[batch, time, features]``), 0 when they are sequence-first
    (``[time, batch, features]``, PyTorch's default), None when it has none, mixes both, or has
    convolutions (``[batch, channels, length]``): then no BPTT curve is recorded."""
    seq = [m for m in model.modules() if isinstance(m, (nn.RNNBase, nn.MultiheadAttention))]
    if not seq or any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules()):
        return None
    firsts = {bool(getattr(m, "batch_first", False)) for m in seq}
    return None if len(firsts) != 1 else (1 if firsts.pop() else 0)


def temporal_curve(model: nn.Module, x: torch.Tensor, target: torch.Tensor | None = None,
                   samples: int = 32, time_dim: int = 1) -> torch.Tensor | None:
    """Mean over samples of ``||d loss_i / d x[i, t, :]||`` for each time step ``t``.

    The mean at ``t`` is over the sequences for which ``t`` is not padding (trailing all-zero
    frames are padding); it is 0 where every sequence is padded.

    Parameters
    ----------
    model : the classifier; it must return logits ``[batch, classes]``.
    x : the input batch ``[batch, time, features]`` (``[time, batch, features]`` with
        ``time_dim=0``); only the first ``samples`` sequences are used.
    target : the true labels ``[batch]``; without them the model's own predictions are used.
    samples : how many sequences to use.
    time_dim : 1 (batch-first input) or 0 (sequence-first).

    Returns
    -------
    A tensor ``[time]`` on the input's device (not synchronised), or None if the model's output
    is not ``[batch, classes]`` logits.
    """
    n = min(samples, x.shape[1 - time_dim])
    xs = (x[:n] if time_dim == 1 else x[:, :n]).detach().clone().requires_grad_(True)
    saved = [b.detach().clone() for b in model.buffers()]
    devices = [xs.device.index or 0] if xs.is_cuda else []
    cudnn = torch.backends.cudnn.flags(enabled=False) if xs.is_cuda else contextlib.nullcontext()
    try:
        with torch.random.fork_rng(devices=devices), torch.enable_grad(), cudnn:
            out = first_tensor(model(xs))
            if out is None or out.dim() != 2 or out.shape[0] != n:
                return None
            if target is not None and isinstance(target, torch.Tensor) and target.dim() == 1 \
                    and target.shape[0] >= n and not target.is_floating_point():
                y = target[:n].to(out.device)
            else:
                y = out.detach().argmax(dim=1)
            loss = F.cross_entropy(out.float(), y, reduction="sum")
            (grad,) = torch.autograd.grad(loss, xs)       # [n, time, features]
    finally:
        with torch.no_grad():
            for buffer, old in zip(model.buffers(), saved):
                buffer.copy_(old)
    return curve_from_grad(grad, xs, time_dim=time_dim)


def curve_from_grad(grad: torch.Tensor, x: torch.Tensor, scale: float = 1.0,
                    time_dim: int = 1) -> torch.Tensor:
    """``scale * ||grad[i, t, :]||`` averaged over the sequences ``i`` where ``t`` is not padding
    (trailing all-zero frames of ``x``); a ``[time]`` tensor on ``grad``'s device (no sync).
    ``grad`` and ``x`` are ``[batch, time, features]``, or ``[time, batch, features]`` with
    ``time_dim=0``."""
    if time_dim == 0:
        grad, x = grad.transpose(0, 1), x.transpose(0, 1)
    norms = grad.detach().float().norm(dim=2)             # [n, time]
    if scale != 1.0:
        norms = norms * scale
    valid = _valid_frames(x.detach())                     # [n, time]
    return (norms * valid).sum(0) / valid.sum(0).clamp(min=1)  # [time]


class InputGradTap:
    """Keeps ``d loss / d x`` of one training forward pass, computed by the user's backward.

    :meth:`attach` returns ``x + zero`` (the same values; ``zero`` is a 0-d tensor that requires
    grad), so autograd computes the gradient with respect to the input even when ``x`` does not
    require grad. It is not a leaf, so in-place operations on it inside the model stay legal, and
    when ``x`` itself requires grad (adversarial training) its gradient still flows to ``x``.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.x: torch.Tensor | None = None
        self.grad: torch.Tensor | None = None
        self.loss_scale: torch.Tensor | float | None = None
        self._scaler: object = None

    @property
    def attached(self) -> bool:
        return self.x is not None

    def attach(self, x: torch.Tensor, scaler: object = None) -> torch.Tensor:
        zero = torch.zeros((), dtype=x.dtype, device=x.device, requires_grad=True)
        tapped = x + zero
        tapped.register_hook(self._keep)
        self.x, self.grad, self._scaler = x.detach(), None, scaler
        return tapped

    def _keep(self, grad: torch.Tensor) -> None:
        if self.grad is not None:  # a second backward through the same graph: keep the first
            return
        self.grad = grad.detach()
        self.loss_scale = loss_scale(self._scaler)  # of *this* backward

    def curve(self, time_dim: int = 1) -> torch.Tensor:
        """The per-sequence curve, assuming the loss is a mean over the batch (torch's default
        reduction): the gradient is multiplied by the batch size (and divided by the AMP loss
        scale), which makes it ``||d loss_i / d x_i[t]||`` as :func:`temporal_curve` computes."""
        if self.grad is None or self.x is None:
            raise RuntimeError("InputGradTap.curve() needs a tapped input and its gradient")
        grad = self.grad if self.loss_scale is None else self.grad.float() / self.loss_scale
        batch = self.x.shape[1 - time_dim]
        return curve_from_grad(grad, self.x, scale=float(batch), time_dim=time_dim)


def _valid_frames(x: torch.Tensor) -> torch.Tensor:
    """1.0 where a frame is not padding: trailing all-zero frames are padding."""
    nonzero = (x != 0).any(dim=2).float()                 # [n, time]
    return nonzero.flip(1).cummax(dim=1).values.flip(1)   # any non-zero frame at or after t


class TemporalRecorder:
    """When the monitor records the BPTT curve (at most once per epoch), and from where.

    Parameters
    ----------
    enabled : record curves at all.
    samples : sequences used by the extra pass.
    budget : with ``auto``, extra passes after the first take at most a quarter of it.
    auto : the monitor chooses its interval (``every=None``).
    time_dim : the input's time dimension (:func:`sequence_layout`); None records nothing.
    """

    def __init__(self, enabled: bool, samples: int, budget: float, auto: bool,
                 time_dim: int | None = 1) -> None:
        self.enabled = enabled and time_dim is not None
        self.samples, self.budget, self.auto, self.time_dim = samples, budget, auto, time_dim
        self.tap, self.tap_ok = InputGradTap(), True
        self.done_epoch = False
        self.seconds = 0.0  # wall seconds spent in extra passes

    @property
    def _dim(self) -> int:
        """The time dimension (only read while enabled, when it is known)."""
        return 1 if self.time_dim is None else self.time_dim

    def tap_input(self, args: tuple, history: Any, scaler: Any) -> torch.Tensor | None:
        """The input to give the model in place of ``args[0]`` (tapped), or None."""
        if not self.enabled or not self.tap_ok or self.done_epoch or not args \
                or not is_sequence_input(args[0]) or "temporal_error" in history.meta:
            return None
        return self.tap.attach(args[0], scaler)

    def take_tapped(self, k: int, history: Any) -> None:
        """Keep the curve of the step's own backward, if it came."""
        if self.tap.grad is not None:
            self._add(k, self.tap.curve(self._dim), "training step", history)
        elif self.tap.attached:  # the input gradient never arrived: extra passes from now on
            self.tap_ok = False
        self.tap.reset()

    def extra_due(self, inputs: tuple | None, history: Any, elapsed: float) -> bool:
        if not self.enabled or self.done_epoch or inputs is None \
                or "temporal_error" in history.meta:
            return False
        args, kwargs = inputs
        if len(args) != 1 or kwargs or not is_sequence_input(args[0]):
            return False
        if self.auto and self.seconds > 0:  # after the first: a quarter of the budget
            return self.seconds <= 0.25 * self.budget * elapsed
        return True

    def extra_pass(self, k: int, model: nn.Module, x: torch.Tensor, target: Any,
                   history: Any) -> tuple[float, float]:
        """The curve from a separate pass; a model that cannot take it only loses the curve.
        Returns the (wall, cpu) seconds it took."""
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            curve = temporal_curve(model, x, target, self.samples, self._dim)
        except Exception as exc:  # noqa: BLE001 - never break the user's training loop
            history.meta["temporal_error"] = f"{type(exc).__name__}: {exc}"[:300]
            curve = None
        self.done_epoch = True
        if curve is not None:
            self._add(k, curve, "extra pass", history)
        spent = (time.perf_counter() - t0, time.thread_time() - c0)
        self.seconds += spent[0]
        return spent

    def _add(self, k: int, curve: torch.Tensor, source: str, history: Any) -> None:
        self.done_epoch = True
        history.temporal.append({"step": k, "grad_norm": curve.cpu().tolist()})
        history.meta["temporal_source"] = source
