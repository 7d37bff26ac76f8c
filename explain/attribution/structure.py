"""What the model's structure allows, found before any attribution.

A one-sample structural trace (:func:`trace_model`) records which modules ran and how often,
functional non-linearities and products of activations, so :func:`incompatibilities` can tell
which methods would return silently wrong values (deeplift / shap_deep rules) before running;
:func:`gradient_checked` finds a model whose gradient is zero although its output changes (a
non-differentiable step), where every gradient method would return zeros. The checks of the
inputs, the target and the forward itself live in :mod:`.preflight`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from explain._core.outputs import unwrap
from explain.attribution.batching import expand_args

__all__ = ["Trace", "trace_model", "incompatibilities", "gradient_is_informative",
           "gradient_checked", "model_state"]

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
