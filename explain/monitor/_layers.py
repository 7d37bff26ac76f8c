"""Which modules the monitor watches, and the fused activation statistics it computes.

A *layer* is a module with parameters of its own (Linear, Conv, RNN/GRU/LSTM, Embedding, ...;
norm layers only on request), in registration order. Activation statistics of a layer come from
the first activation module that runs after it in the forward pass (so a shared ``nn.ReLU`` is
attributed correctly), or from the layer's own output: for RNNs that is the hidden state (tanh);
for other layers with no activation module only the mean and standard deviation are recorded.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["untraced", "LayerSpec", "find_layers", "find_activations", "activation_kind", "activation_stats",
           "count_nonfinite", "first_tensor", "finish_stats", "static_activation_guess",
           "compiled_modules", "loss_scale", "NUM_ACT_STATS"]

_NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()))

_ACTIVATIONS: dict[type[nn.Module], str] = {
    nn.ReLU: "relu", nn.ReLU6: "relu6", nn.Threshold: "threshold", nn.LeakyReLU: "leaky_relu",
    nn.PReLU: "prelu", nn.RReLU: "rrelu", nn.ELU: "elu", nn.SELU: "selu", nn.CELU: "celu",
    nn.GELU: "gelu", nn.SiLU: "silu", nn.Mish: "mish", nn.Hardswish: "hardswish",
    nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.Hardsigmoid: "hardsigmoid",
    nn.Hardtanh: "hardtanh", nn.Softplus: "softplus", nn.Softsign: "softsign",
    nn.LogSigmoid: "logsigmoid",
}
ZERO_KINDS = frozenset({"relu", "relu6"})          # outputs exactly 0 when inactive
SATURATING_KINDS = frozenset({"sigmoid", "tanh"})   # |tanh| > 0.99, sigmoid < 0.01 or > 0.99
NUM_ACT_STATS = 5  # act_mean, act_std, frac_zero, frac_saturated, frac_dead


@dataclass
class LayerSpec:
    """One watched layer: its module, own parameters and how its units are laid out."""

    name: str
    module: nn.Module
    index: int
    params: list[nn.Parameter] = field(default_factory=list)
    unit_dim: int = -1            # features of a Linear/RNN output; channels (1) of a conv
    intrinsic: str | None = None  # activation inside the layer (RNN hidden state)

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.params)


def activation_kind(module: nn.Module) -> str | None:
    """The activation name of an activation module (``"relu"``, ``"tanh"``, ...) or None."""
    for cls in type(module).__mro__:
        if cls in _ACTIVATIONS:
            return _ACTIVATIONS[cls]
    return None


def _rnn_kind(module: nn.RNNBase) -> str:
    if isinstance(module, nn.RNN):
        return str(getattr(module, "nonlinearity", "tanh"))
    return "tanh"  # GRU / LSTM hidden states lie in (-1, 1)


def find_layers(model: nn.Module, include_norm: bool = False) -> list[LayerSpec]:
    """Every module with parameters of its own, in registration order (input -> output).

    Activation modules with parameters (PReLU) and, unless ``include_norm``, norm layers are
    not layers.
    """
    layers: list[LayerSpec] = []
    for name, module in model.named_modules():
        params = list(module.parameters(recurse=False))
        if not params or activation_kind(module) is not None:
            continue
        if isinstance(module, _NORM_TYPES) and not include_norm:
            continue
        conv = isinstance(module, nn.modules.conv._ConvNd)
        spec = LayerSpec(name=name or type(module).__name__, module=module, index=len(layers),
                         params=params, unit_dim=1 if conv else -1)
        if isinstance(module, nn.RNNBase):
            spec.intrinsic = _rnn_kind(module)
        layers.append(spec)
    return layers


def find_activations(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """Every activation module with its kind."""
    found = []
    for module in model.modules():
        kind = activation_kind(module)
        if kind is not None:
            found.append((module, kind))
    return found


def loss_scale(scaler: Any) -> torch.Tensor | float | None:
    """The scale an enabled ``GradScaler`` applies to the loss right now (a copy of its device
    tensor, no sync), or None without one. Read it during backward: ``update()`` changes it."""
    if scaler is None or not scaler.is_enabled():
        return None
    scale = getattr(scaler, "_scale", None)
    return scale.detach().clone() if isinstance(scale, torch.Tensor) else float(scaler.get_scale())


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


@functools.cache
def _untraced_call() -> Any:
    return torch.compiler.disable(_call)  # made once: ~0.1 ms per torch.compiler.disable call


def untraced(hook: Any) -> Any:
    """``hook`` run outside TorchDynamo's tracing (as ``torch.compiler.disable(hook)`` would),
    through one disabled caller shared by all hooks."""
    return functools.partial(_untraced_call(), hook)


def compiled_modules(model: nn.Module) -> set[int]:
    """The ``id`` of every module whose calls run inside code compiled by ``torch.compile``.

    For ``torch.compile(module)`` that is the wrapped module and everything in it (the wrapper
    itself runs eagerly); for ``module.compile()`` the module itself too. Hooks there would be
    traced into the compiled graphs (TorchDynamo does not guard on hooks by default), so the
    monitor leaves those modules alone.
    """
    inside: set[int] = set()
    for module in model.modules():
        if getattr(module, "_compiled_call_impl", None) is not None:
            inside.update(id(m) for m in module.modules())
        orig = getattr(module, "_orig_mod", None)
        if isinstance(orig, nn.Module) and type(module).__name__ == "OptimizedModule":
            inside.update(id(m) for m in orig.modules())
    return inside


def static_activation_guess(model: nn.Module, layers: list[LayerSpec]) -> dict:
    """Layer -> the first activation module registered after it (before the next layer)."""
    by_module = {id(spec.module): spec for spec in layers}
    guess: dict[str, str | None] = {}
    current = None
    for module in model.modules():
        if id(module) in by_module:
            current = by_module[id(module)]
            guess[current.name] = current.intrinsic
        elif current is not None and guess[current.name] is None:
            guess[current.name] = activation_kind(module)
    return guess


def first_tensor(output: object) -> torch.Tensor | None:
    """The tensor a module returned: the output itself, ``output[0]`` of a tuple (RNNs), or the
    ``.data`` of a PackedSequence."""
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    if isinstance(output, nn.utils.rnn.PackedSequence):
        output = output.data
    return output if isinstance(output, torch.Tensor) and output.is_floating_point() else None


def activation_stats(y: torch.Tensor, kind: str | None, unit_dim: int) -> torch.Tensor:
    """Five raw sums over an activation tensor, as one float32 tensor on its device (no sync).

    Order: sum, L2 norm, number of non-zero values, number of saturated values, fraction of
    live units; :func:`finish_stats` turns them into mean, std and fractions on the host. The
    entries that do not apply to ``kind`` are NaN. A unit is one slice along ``unit_dim``
    (features, or conv channels); it is dead when it is zero for every sample (and position)
    of the batch. Each statistic is one pass over ``y`` without temporaries where torch allows
    (on one CPU thread ``var_mean`` was 25x and ``y - mean`` 3x slower than ``sum`` plus
    ``vector_norm``; boolean reductions are several times slower than ``sign().sum()``).
    """
    y = y.detach()
    if y.numel() == 0:
        return torch.full((NUM_ACT_STATS,), float("nan"), device=y.device)
    if y.dtype != torch.float32:
        y = y.float()
    nan = _nan(y.device)
    nonzero = saturated = live = nan
    if kind in ZERO_KINDS:  # outputs >= 0: sign() is 1 where active, 0 where zero
        nonzero = torch.sign(y).sum()
        dims = tuple(d for d in range(y.dim()) if d != unit_dim % y.dim())
        peak = y.amax(dim=dims) if dims else y  # [units]
        live = torch.sign(peak).mean()
    elif kind == "tanh":
        saturated = torch.relu_(y.abs().sub_(0.99)).sign_().sum()
    elif kind == "sigmoid":
        saturated = torch.relu_((y - 0.5).abs_().sub_(0.49)).sign_().sum()
    return torch.stack([y.sum(), torch.linalg.vector_norm(y), nonzero, saturated, live])


def finish_stats(raw: list[float], kind: str | None, y: torch.Tensor,
                 unchanged: bool = True) -> list[float]:
    """Mean, std, fraction zero, fraction saturated, fraction dead from
    :func:`activation_stats`' sums over ``y`` (fractions that do not apply are NaN).

    The variance comes from the first two moments, which loses precision when
    ``|mean| / std`` exceeds ~100 (float32 sums): then it is recomputed exactly from ``y`` if
    ``unchanged`` says ``y`` still holds the values the sums were taken from.
    """
    n = y.numel()
    total, norm, nonzero, saturated, live = raw
    nan = float("nan")
    if n == 0:
        return [nan] * NUM_ACT_STATS
    mean = total / n
    m2 = norm * norm / n
    var = m2 - mean * mean
    if n == 1:
        std = nan
    elif math.isfinite(var) and m2 > 0 and var < 1e-4 * m2 and unchanged:
        with torch.no_grad():
            yf = y.detach().float()
            std = float(torch.linalg.vector_norm(yf - yf.mean())) / math.sqrt(n - 1)
    else:
        std = math.sqrt(max(var, 0.0) * n / (n - 1)) if math.isfinite(var) else nan
    return [mean, std,
            1 - nonzero / n if kind in ZERO_KINDS else nan,
            saturated / n if kind in SATURATING_KINDS else nan,
            1 - live if kind in ZERO_KINDS else nan]


_NANS: dict[torch.device, torch.Tensor] = {}


def _nan(device: torch.device) -> torch.Tensor:
    """A 0-d NaN on ``device``, made once (a fill per call costs a kernel launch)."""
    t = _NANS.get(device)
    if t is None:
        t = _NANS[device] = torch.full((), float("nan"), device=device)
    return t


def count_nonfinite(y: torch.Tensor) -> int:
    """Exact number of non-finite values (synchronises; used only when a statistic is not)."""
    return int((~torch.isfinite(y.detach())).sum())
