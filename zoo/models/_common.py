"""Helpers shared by the zoo's model files: activations, weight init, padding lengths, cards.

Every activation is a fresh module instance (never reused, never in-place), so forward hooks see
each one and attribution libraries (captum's DeepLift, shap) can treat them as non-linearities.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import torch
from torch import nn

from explain._validation import check_choice, check_float, check_int
from explain.card import Modality, ModelCard
from explain.errors import DataMismatchError, InvalidInputError, InvalidTypeError

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "make_activation",
    "init_weights",
    "lengths_from_padding",
    "make_card",
    "check_input_shape",
    "check_class_names",
    "check_bool",
    "check_batch",
]

#: Activation name -> factory of a fresh, non-in-place module.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=False),
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01, inplace=False),
}

#: Weight initialisations every zoo model accepts.
INITS: tuple[str, ...] = ("default", "xavier", "he", "small-normal")

# nn.init.calculate_gain names for the activations above.
_GAIN = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "gelu": "relu",
         "leaky_relu": "leaky_relu"}


def make_activation(name: str, *, owner: str | None = None,
                    choices: Iterable[str] | None = None) -> nn.Module:
    """A new activation module for ``name`` (``"relu"``, ``"tanh"``, ...).

    Parameters
    ----------
    name : a key of :data:`ACTIVATIONS` (or of ``choices`` when given).
    owner : the model name, for the error message.
    choices : restrict the valid names (e.g. a vanilla RNN takes only tanh/relu).

    Examples
    --------
    >>> make_activation("relu")
    ReLU()
    >>> make_activation("swish")
    Traceback (most recent call last):
    ...
    explain.errors.InvalidInputError: The 'activation' parameter must be one of 'relu', 'tanh', 'sigmoid', 'gelu', 'leaky_relu'. Got 'swish' instead.
    """
    check_choice(name, "activation", list(choices or ACTIVATIONS), owner=owner)
    return ACTIVATIONS[name]()


def init_weights(module: nn.Module, init: str, *, activation: str = "relu", std: float = 0.01,
                 bias_init: float | None = None, owner: str | None = None) -> None:
    """Initialise the weights of every Linear / Conv / recurrent / embedding layer of ``module``.

    Parameters
    ----------
    module : the model (changed in place).
    init : ``"default"`` (PyTorch's own), ``"xavier"`` (Glorot uniform, gain of ``activation``),
        ``"he"`` (Kaiming normal, fan-in) or ``"small-normal"`` (N(0, ``std``)).
    activation : the activation that follows the layers (for the gains).
    std : the standard deviation of ``"small-normal"``.
    bias_init : if given, every Linear/Conv bias is set to this constant (``"default"``
        included); otherwise biases are zero for the non-default inits.
    owner : the model name, for error messages.
    """
    check_choice(init, "init", INITS, owner=owner)
    std = cast(float, check_float(std, "init_std", owner=owner, min=0.0, min_inclusive=False))
    gain_name = _GAIN.get(activation, "linear")
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            _init_tensor(m.weight, init, gain_name, std)
            if m.bias is not None and (init != "default" or bias_init is not None):
                nn.init.constant_(m.bias, 0.0 if bias_init is None else bias_init)
        elif isinstance(m, (nn.RNNBase,)) and init != "default":
            for pname, p in m.named_parameters():
                if pname.startswith("weight"):
                    _init_tensor(p, init, "tanh", std)
                else:
                    nn.init.zeros_(p)
        elif isinstance(m, nn.Embedding) and init == "small-normal":
            nn.init.normal_(m.weight, 0.0, std)
            if m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()


def _init_tensor(w: torch.Tensor, init: str, gain_name: Any, std: float) -> None:
    # gain_name: one of torch.nn.init's nonlinearity names (a Literal there)
    if init == "xavier":
        nn.init.xavier_uniform_(w, gain=nn.init.calculate_gain(gain_name))
    elif init == "he":
        nonlin: Any = "leaky_relu" if gain_name == "leaky_relu" else "relu"
        nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity=nonlin)
    elif init == "small-normal":
        nn.init.normal_(w, 0.0, std)


def lengths_from_padding(x: torch.Tensor) -> torch.Tensor:
    """Valid length of each padded sequence: trailing all-zero frames are padding.

    A time step is padding iff it and every later step are exactly zero in every feature, so a
    zero frame in the middle of a sequence still counts.

    Parameters
    ----------
    x : float tensor ``[B, T, F]`` (or token ids ``[B, L]`` with 0 = padding).

    Returns
    -------
    torch.LongTensor
        ``[B]`` lengths in ``0..T`` on ``x``'s device (0 for an all-padding row).

    Examples
    --------
    >>> x = torch.tensor([[[1.0], [0.0], [2.0], [0.0]], [[0.0], [0.0], [0.0], [0.0]]])
    >>> lengths_from_padding(x).tolist()
    [3, 0]
    """
    if not isinstance(x, torch.Tensor):
        raise InvalidTypeError(
            f"lengths_from_padding expects a torch.Tensor of shape [B, T, F] or [B, L]. "
            f"Got {type(x).__name__} instead.")
    if x.dim() not in (2, 3):
        raise DataMismatchError(
            f"lengths_from_padding expects a [B, T, F] or [B, L] tensor. Got shape "
            f"{tuple(x.shape)} instead; add a batch dimension with x.unsqueeze(0).")
    nonzero = x != 0
    if x.dim() == 3:
        nonzero = nonzero.any(dim=-1)                     # [B, T]
    t = x.shape[1]
    steps = torch.arange(1, t + 1, device=x.device)      # [T] 1-based positions
    return (nonzero.long() * steps).amax(dim=1) if t else torch.zeros(
        x.shape[0], dtype=torch.long, device=x.device)


def check_bool(value: Any, name: str, *, owner: str | None = None) -> bool:
    """Return ``value`` if it is a bool, else raise :class:`InvalidTypeError`."""
    if not isinstance(value, bool):
        raise InvalidTypeError(
            f"The {name!r} parameter of {owner} must be a bool (True or False). Got {value!r} "
            f"({type(value).__name__}) instead.")
    return value


def check_input_shape(shape: Any, *, owner: str, ndim: int, what: str,
                      variable: Sequence[int] = ()) -> tuple[int | None, ...]:
    """Validate the shape of one sample: ``ndim`` positive ints (``None`` allowed at ``variable``).

    Parameters
    ----------
    shape : a list or tuple, e.g. ``(1, 28, 28)``.
    owner : the model name, for the error message.
    ndim : the number of dimensions expected.
    what : how to spell the layout in the message, e.g. ``"[C, H, W]"``.
    variable : positions where ``None`` (a variable size) is allowed.
    """
    if not isinstance(shape, (list, tuple)) or len(shape) != ndim:
        raise InvalidInputError(
            f"The 'input_shape' parameter of {owner} must be a list or tuple of {ndim} sizes "
            f"{what}. Got {shape!r} instead.")
    out: list[int | None] = []
    for i, s in enumerate(shape):
        if s is None and i in variable:
            out.append(None)
        else:
            out.append(check_int(s, f"input_shape[{i}]", owner=owner, min=1))
    return tuple(out)


def check_class_names(class_names: Any, num_classes: Any, *,
                      owner: str) -> tuple[int, list[str]]:
    """Validate ``num_classes`` (int >= 2) and ``class_names`` (default ``"0".."K-1"``)."""
    k = check_int(num_classes, "num_classes", owner=owner, min=2)
    if class_names is None:
        return k, [str(i) for i in range(k)]
    if isinstance(class_names, str) or not isinstance(class_names, (list, tuple)):
        raise InvalidTypeError(
            f"The 'class_names' parameter of {owner} must be a list of {k} names or None. "
            f"Got {class_names!r} instead.")
    if len(class_names) != k:
        raise InvalidInputError(
            f"The 'class_names' parameter of {owner} must have num_classes={k} entries. Got "
            f"{len(class_names)} instead; pass one name per class or leave it None.")
    return k, [str(c) for c in class_names]


def check_batch(x: Any, *, owner: str, shape: Sequence[int | None], dtype: str) -> None:
    """Raise :class:`DataMismatchError` if ``x`` is not a batch of the card's input spec."""
    if not isinstance(x, torch.Tensor):
        raise InvalidTypeError(
            f"{owner} expects a torch.Tensor batch. Got {type(x).__name__} instead.")
    want = "[B, " + ", ".join("*" if s is None else str(s) for s in shape) + "]"
    ok = x.dim() == len(shape) + 1 and all(
        s is None or x.shape[i + 1] == s for i, s in enumerate(shape))
    if not ok:
        raise DataMismatchError(
            f"{owner} expects input of shape {want} ({dtype}). Got {tuple(x.shape)} instead; "
            f"batch single samples with x.unsqueeze(0) or rebuild the model with "
            f"input_shape matching the data.")
    is_int = not (x.is_floating_point() or x.is_complex())
    if (dtype == "int64") != is_int:
        raise DataMismatchError(
            f"{owner} expects {dtype} input. Got {x.dtype} instead"
            + ("; pass token ids as a LongTensor." if dtype == "int64"
               else "; convert with x.float()."))


def make_card(*, name: str, modality: Modality | str, input_shape: Sequence[int | None],
              input_dtype: str, class_names: list[str], layers: dict[str, str],
              kwargs: dict[str, Any]) -> ModelCard:
    """A :class:`ModelCard` whose ``kwargs`` rebuild the model with ``create_model``."""
    return ModelCard(name=name, modality=Modality(modality), input_shape=tuple(input_shape),
                     input_dtype=input_dtype, num_classes=len(class_names),
                     class_names=tuple(class_names), layers=dict(layers), kwargs=dict(kwargs))


def conv_out(size: int, pools: int) -> int:
    """Spatial size after ``pools`` 2x2 max-pools (floor), e.g. 28 -> 14 -> 7."""
    for _ in range(pools):
        size = math.floor(size / 2)
    return size
