"""Checks run before any attribution: bad inputs, and what the model's structure allows.

Two kinds of checks live here:

* input checks (:func:`check_inputs`, :func:`check_target`, :func:`check_forward`) raise typed
  errors whose messages name the input, what was expected, what came and the fix;
* a one-sample structural trace (:func:`trace_model`) records which modules ran and how often,
  functional non-linearities and products of activations, so :func:`incompatibilities` can tell
  which methods would return silently wrong values (deeplift / shap_deep rules) before running.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from explain._core.outputs import unwrap
from explain._validation import unknown_name
from explain.attribution.batching import expand_args
from explain.card import ModelCard
from explain.errors import DataMismatchError, InvalidInputError, InvalidTypeError

__all__ = ["Trace", "check_inputs", "check_target", "check_forward", "accepted_classes",
           "recheck", "MODEL_ERRORS", "trace_model",
           "incompatibilities", "gradient_is_informative", "gradient_checked", "model_state",
           "find_layer"]

_NONLINEAR_FUNCS = {
    "relu", "relu_", "gelu", "sigmoid", "tanh", "softmax", "log_softmax", "silu", "elu",
    "leaky_relu", "softplus", "hardtanh", "relu6", "mish", "selu", "celu", "hardswish",
    "hardsigmoid", "max_pool1d", "max_pool2d", "max_pool3d", "layer_norm", "exp", "log",
}
_PRODUCT_FUNCS = {"mul", "matmul", "bmm", "einsum", "baddbmm", "__mul__", "__matmul__"}
_CAPTUM_DEEPLIFT_OK = (nn.ReLU, nn.ELU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Softplus,
                       nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.Softmax)
_LINEAR_LEAVES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d,
                  nn.ConvTranspose2d, nn.ConvTranspose3d, nn.AvgPool1d, nn.AvgPool2d,
                  nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
                  nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.Dropout, nn.Dropout1d,
                  nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity, nn.Flatten,
                  nn.Unflatten, nn.Embedding)


@dataclass
class Trace:
    """What one forward pass of one sample showed about the model.

    Attributes
    ----------
    calls : dotted module name -> number of forward calls (> 1 means the module is reused).
    leaf_types : dotted name -> class name, for modules without children that ran.
    functional : ``"<op> in <module>"`` for non-linear torch functions called outside an
        activation module (F.relu in a forward, softmax in attention, ...).
    products : ``"<op> in <module>"`` for products of two tensors that both depend on the input.
    has_rnn : an ``nn.RNNBase`` (RNN/LSTM/GRU) ran.
    num_classes : size of the model's output's last dimension.
    """

    calls: dict[str, int] = field(default_factory=dict)
    leaf_types: dict[str, str] = field(default_factory=dict)
    functional: list[str] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    has_rnn: bool = False
    num_classes: int = 0

    @property
    def reused(self) -> list[str]:
        """Modules called more than once in one forward pass."""
        return [name for name, n in self.calls.items() if n > 1 and name]


def check_inputs(inputs: Any, name: str = "inputs") -> torch.Tensor:
    """Return ``inputs`` if it is a non-empty, finite tensor with a batch dimension.

    Raises
    ------
    InvalidTypeError : not a tensor.
    InvalidInputError : empty batch, no batch dimension, or NaN/inf values (positions named).
    """
    if not isinstance(inputs, torch.Tensor):
        raise InvalidTypeError(
            f"The {name!r} parameter of attribute must be a torch.Tensor of shape "
            f"[batch, *sample_shape]. Got {type(inputs).__name__} instead; wrap it with "
            "torch.as_tensor(...).")
    if inputs.dim() < 1 or inputs.shape[0] == 0:
        raise InvalidInputError(
            f"The {name!r} parameter of attribute must hold at least one sample "
            f"([batch >= 1, ...]). Got an empty batch of shape {list(inputs.shape)} instead.")
    if inputs.is_floating_point() or inputs.is_complex():
        bad = ~torch.isfinite(inputs)
        if bool(bad.any()):
            where = bad.nonzero()[:5].tolist()
            more = int(bad.sum()) - len(where)
            raise InvalidInputError(
                f"The {name!r} parameter of attribute must be finite. Got {int(bad.sum())} "
                f"NaN/inf values, at positions {where}" + (f" and {more} more" if more > 0 else "")
                + "; replace or drop these samples (e.g. torch.nan_to_num).")
    return inputs


def check_target(target: Any, batch: int, num_classes: int, device: torch.device,
                 predict: Callable[[], torch.Tensor]) -> torch.Tensor:
    """Resolve ``target`` to a ``[batch]`` int64 tensor on ``device``.

    ``None`` means the predicted class (``predict()``, the arg-max of the model's logits; only
    then is the model run on the whole batch); an int applies to every sample; a sequence or
    tensor gives one class per sample.
    """
    if target is None:
        return predict().long()
    try:
        t = torch.as_tensor(target, device=device)
    except (TypeError, ValueError, RuntimeError) as err:
        raise InvalidTypeError(
            "The 'target' parameter of attribute must be None, an int or one int per "
            f"sample. Got {type(target).__name__} instead.") from err
    if t.is_floating_point() or t.dtype == torch.bool:
        raise InvalidTypeError(
            "The 'target' parameter of attribute must hold integer class indices. Got dtype "
            f"{t.dtype} instead; use target.long().")
    t = t.long().reshape(-1)
    if t.numel() == 1:
        t = t.expand(batch).clone()
    if t.numel() != batch:
        raise InvalidInputError(
            f"The 'target' parameter of attribute must be one int or {batch} ints (one per "
            f"sample). Got {t.numel()} instead.")
    bad = (t < 0) | (t >= num_classes)
    if bool(bad.any()):
        raise InvalidInputError(
            f"The 'target' parameter of attribute must be in the valid range 0..{num_classes - 1} "
            f"(the model has {num_classes} outputs). Got {t[bad][:5].tolist()} at sample(s) "
            f"{bad.nonzero().flatten()[:5].tolist()} instead.")
    return t


def _expected(card: ModelCard | None) -> str:
    if card is None:
        return "(no model card: the model's own error follows)"
    shape = ", ".join("*" if d is None else str(d) for d in card.input_shape)
    return f"[batch, {shape}] {card.input_dtype} (from the model card of {card.name!r})"


#: what a model raises on inputs it cannot take (wrapped by :func:`check_forward`)
MODEL_ERRORS = (RuntimeError, ValueError, TypeError, IndexError)

def _check_card(inputs: torch.Tensor, card: ModelCard | None, got: str) -> None:
    """Raise when the card's input spec disagrees with ``inputs``."""
    if card is None:
        return
    shape_ok = (len(card.input_shape) == inputs.dim() - 1 and all(
        d is None or d == s for d, s in zip(card.input_shape, inputs.shape[1:])))
    dtype_ok = (inputs.dtype == torch.int64) == (card.input_dtype == "int64")
    if not (shape_ok and dtype_ok):
        fix = ("convert with inputs.float()" if shape_ok else
               "reshape the inputs to the card's sample shape with a leading batch dimension")
        raise DataMismatchError(
            f"The 'inputs' of attribute do not fit the model: expected {_expected(card)}. "
            f"Got {got} instead; {fix}.")


def _shown(inputs: torch.Tensor, batch: int | None) -> str:
    shown = [batch or inputs.shape[0], *inputs.shape[1:]]
    return f"{shown} {str(inputs.dtype).replace('torch.', '')}"


def check_forward(forward: Callable[..., torch.Tensor], inputs: torch.Tensor,
                  args: tuple, card: ModelCard | None,
                  batch: int | None = None) -> torch.Tensor:
    """Run ``forward`` on ``inputs`` without gradients; wrap a failure in a clear error.

    ``batch`` is the caller's batch size, shown in messages when ``inputs`` is a slice of it.

    Raises
    ------
    DataMismatchError : the card's input spec disagrees with the inputs, or the model raised.
    """
    got = _shown(inputs, batch)
    _check_card(inputs, card, got)
    try:
        with torch.no_grad():
            out = forward(inputs, *args)
    except MODEL_ERRORS as err:
        raise DataMismatchError(
            f"The model could not take the 'inputs' of attribute: expected {_expected(card)}. "
            f"Got {got} instead. The model said: {str(err).splitlines()[0]}") from err
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise DataMismatchError(
            "The model must return logits shaped [batch, classes]. Got "
            f"{getattr(out, 'shape', type(out).__name__)} instead; wrap the model so it does.")
    return out


#: per model: forward spec -> (model_state, classes) of the last first-sample check it passed
_ACCEPTED: weakref.WeakKeyDictionary[nn.Module, dict[tuple, tuple[tuple, int]]] = \
    weakref.WeakKeyDictionary()


def _spec(inputs: torch.Tensor, args: tuple) -> tuple | None:
    """What a forward's acceptance depends on besides the model: the sample shape, dtype and
    device, and each extra argument's sample shape and dtype (or its value); None when an
    argument is not hashable (then nothing is remembered)."""
    parts: list[Any] = [tuple(inputs.shape[1:]), inputs.dtype, str(inputs.device)]
    for a in args:
        if isinstance(a, torch.Tensor):
            parts.append((tuple(a.shape[1:]), a.dtype, str(a.device)))
        else:
            try:
                hash(a)
            except TypeError:
                return None
            parts.append((type(a).__name__, a))
    return tuple(parts)


def accepted_classes(model: nn.Module, forward: Callable[..., torch.Tensor],
                     inputs: torch.Tensor, args: tuple, card: ModelCard | None
                     ) -> tuple[int, bool]:
    """:func:`check_forward` on the first sample, remembered per model: ``(classes, cached)``.

    The card check always runs. The one-sample forward (it wraps a model that cannot take
    the inputs in a :class:`DataMismatchError`, and gives the number of classes the target
    is checked against) is remembered for ``model`` (forgotten with it) under the forward
    spec (:func:`_spec`) and :func:`model_state`, so a repeat call on the same model and
    input spec skips it (``cached`` True). Only a passed check is remembered; a caller that
    skipped it re-runs it when the attribution itself raises (:func:`recheck`), so a model
    error still comes as the typed error the check would have raised.
    """
    n = inputs.shape[0]
    _check_card(inputs, card, _shown(inputs, n))
    key, owner, state = _spec(inputs, args), unwrap(model), model_state(model)
    if key is not None:
        hit = _ACCEPTED.get(owner, {}).get(key)
        if hit is not None and hit[0] == state:
            return hit[1], True
    one = slice(0, 1)
    out = check_forward(forward, inputs[one], expand_args(args, one, n), card, batch=n)
    classes = int(out.shape[1])
    if key is not None:
        _ACCEPTED.setdefault(owner, {})[key] = (state, classes)
    return classes, False


def recheck(forward: Callable[..., torch.Tensor], inputs: torch.Tensor, args: tuple,
            card: ModelCard | None, target: torch.Tensor) -> None:
    """The checks :func:`accepted_classes` remembered, run again after a model error: raise
    the :class:`DataMismatchError` of :func:`check_forward`, or the target range error of
    :func:`check_target` against the classes the model returns now; return if both pass
    (the caller then re-raises the model's own error)."""
    n, one = inputs.shape[0], slice(0, 1)
    out = check_forward(forward, inputs[one], expand_args(args, one, n), card, batch=n)
    check_target(target, n, int(out.shape[1]), target.device, lambda: target)


class _Recorder(TorchFunctionMode):
    """Records non-linear torch functions and activation products with the innermost module."""

    def __init__(self, stack: list[tuple[str, nn.Module]], trace: Trace) -> None:
        super().__init__()
        self.stack, self.trace = stack, trace

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        where, module = self.stack[-1] if self.stack else ("<model>", None)
        if name in _NONLINEAR_FUNCS and not isinstance(module, _CAPTUM_DEEPLIFT_OK):
            self.trace.functional.append(f"{name} in {where or '<model>'}")
        elif name in _PRODUCT_FUNCS:
            live = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad
                    and not isinstance(a, nn.Parameter)]
            if len(live) >= 2:
                self.trace.products.append(f"{name} in {where or '<model>'}")
        return out


def trace_model(model: nn.Module, forward: Callable[..., torch.Tensor], sample: torch.Tensor,
                args: tuple) -> Trace:
    """Run one sample through ``forward`` with hooks and record the model's structure.

    ``sample`` must require grad (or be the input of a hooked embedding) so products of
    activations can be told from products with constants. Hooks are removed in ``finally``.
    """
    trace = Trace()
    stack: list[tuple[str, nn.Module]] = []
    handles = []

    def pre(name: str):
        def hook(mod, _inp):
            stack.append((name, mod))
            trace.calls[name] = trace.calls.get(name, 0) + 1
            if not any(True for _ in mod.children()):
                trace.leaf_types[name] = type(mod).__name__
            trace.has_rnn = trace.has_rnn or isinstance(mod, nn.RNNBase)
        return hook

    def post(_mod, _inp, _out):
        if stack:
            stack.pop()

    try:
        for name, mod in model.named_modules():
            handles.append(mod.register_forward_pre_hook(pre(name)))
            handles.append(mod.register_forward_hook(post))
        with torch.enable_grad(), _Recorder(stack, trace):
            out = forward(sample, *args)
        trace.num_classes = int(out.shape[-1])
    finally:
        for h in handles:
            h.remove()
    trace.functional = sorted(set(trace.functional))
    trace.products = sorted(set(trace.products))
    return trace


def incompatibilities(family: str, trace: Trace) -> list[str]:
    """Why a rule-based method (``"deeplift"`` or ``"shap_deep"``) would be wrong on this model.

    An empty list means the method's propagation rules cover every operation the model ran.
    """
    reasons = []
    if trace.reused:
        reasons.append(f"modules reused within one forward pass: {trace.reused[:4]}")
    if trace.functional:
        reasons.append(f"functional non-linearities outside activation modules: "
                       f"{trace.functional[:4]}")
    if trace.products:
        reasons.append(f"products of activations (attention, gating): {trace.products[:4]}")
    if trace.has_rnn:
        reasons.append("a recurrent layer (RNN/LSTM/GRU), whose internal gates have no rule")
    if family == "shap_deep":
        from shap.explainers._deep.deep_pytorch import op_handler
        odd = sorted({t for t in trace.leaf_types.values()
                      if t not in op_handler and t != "Embedding"})
    else:
        ok = {c.__name__ for c in _CAPTUM_DEEPLIFT_OK + _LINEAR_LEAVES}
        odd = sorted({t for t in trace.leaf_types.values() if t not in ok})
    if odd:
        reasons.append(f"layers without a propagation rule: {odd[:4]}")
    return reasons


def gradient_is_informative(forward: Callable[..., torch.Tensor], x: torch.Tensor,
                            args: tuple, target: torch.Tensor) -> bool:
    """False when the gradient is zero or missing everywhere although the output does change.

    That is the signature of a non-differentiable step (rounding, argmax, ``.detach()``) inside
    the model, where every gradient method would return zeros.
    """
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = forward(x, *args)
        picked = out.gather(1, target[:, None]).sum()
        grad = (torch.autograd.grad(picked, x, allow_unused=True)[0] if picked.requires_grad
                else None)
    if grad is not None and bool((grad != 0).any()):
        return True
    with torch.no_grad():
        scale = float(x.detach().abs().mean()) or 1.0
        gen = torch.Generator(device="cpu").manual_seed(0)
        ref = out.detach().gather(1, target[:, None])
        for size in (0.05, 0.2, 0.5):
            noise = torch.randn(x.shape, generator=gen).to(x.device) * size * scale
            moved = forward(x.detach() + noise, *args).gather(1, target[:, None])
            if not bool(torch.isclose(moved, ref).all()):
                return False
    return True


#: per model: (sample shape, dtype, device, forward, args) -> the model_state last found
#: informative (one state per key, so a model explained after every training step keeps one)
_INFORMATIVE: weakref.WeakKeyDictionary[nn.Module, dict[tuple, tuple]] = \
    weakref.WeakKeyDictionary()


def model_state(model: nn.Module) -> tuple:
    """What a structural check of ``model`` depends on: which modules it has and, for every
    parameter, its storage and in-place version (an optimizer step or ``load_state_dict``
    changes them)."""
    return (tuple(id(m) for m in model.modules()),
            tuple((p.data_ptr(), p._version) for p in model.parameters()))


def gradient_checked(model: nn.Module, forward: Callable[..., torch.Tensor], x: torch.Tensor,
                     args: tuple, target: torch.Tensor) -> bool:
    """:func:`gradient_is_informative` on the first 4 samples, remembered per model.

    A positive answer is cached for ``model`` (forgotten with it) under the sample shape,
    dtype, device, forward type and :func:`model_state`, so a repeat call on the same model
    skips the extra forward+backward; a new shape, a changed or retrained model, or a model
    whose gradient was not informative is checked again.
    """
    key = (tuple(x.shape[1:]), x.dtype, str(x.device), type(forward).__name__, len(args))
    state, owner = model_state(model), unwrap(model)
    if _INFORMATIVE.get(owner, {}).get(key) == state:
        return True
    probe = slice(0, min(4, x.shape[0]))
    ok = gradient_is_informative(forward, x[probe], expand_args(args, probe, x.shape[0]),
                                 target[probe])
    if ok:
        _INFORMATIVE.setdefault(owner, {})[key] = state
    return ok


def find_layer(model: nn.Module, card: ModelCard | None, role: str,
               kind: type[nn.Module], pick: str = "first") -> tuple[str, nn.Module] | None:
    """The module for ``role`` from the card's ``layers``, else the first/last ``kind`` found."""
    modules = dict(model.named_modules())
    if card is not None and role in card.layers:
        name = card.layers[role]
        if name not in modules:
            raise unknown_name(f"layer (model card role {role!r})", name, [n for n in modules if n])
        return name, modules[name]
    found = [(n, m) for n, m in modules.items() if isinstance(m, kind)]
    if not found:
        return None
    return found[0] if pick == "first" else found[-1]

