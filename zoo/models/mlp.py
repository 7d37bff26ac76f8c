"""A fully connected classifier for any fixed-shape float input (flattened).

``layers.0`` .. ``layers.{depth}`` are the Linear layers from input to output (the last one is
the head); hidden layer ``i`` is followed by ``norms.i`` (BatchNorm, optional), ``acts.i`` and
``drops.i``. The zoo's pathology presets build on it: a deep sigmoid MLP with
``init="small-normal"`` (vanishing gradients) and a ReLU MLP with a negative ``bias_init``
(dead units).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from explain._validation import check_choice, check_float, check_int
from explain.card import ModelCard
from explain.errors import InvalidInputError
from zoo.models._common import (
    check_batch,
    check_bool,
    check_class_names,
    check_input_shape,
    init_weights,
    make_activation,
    make_card,
)
from zoo.registry import register_model

__all__ = ["MLP", "mlp"]

_OWNER = "mlp"


class MLP(nn.Module):
    """``depth`` hidden layers of ``width`` units + a linear head; ``[B, *shape]`` -> ``[B, K]``.

    Build it with :func:`mlp` (``zoo.create_model("mlp")``), which validates the options and
    attaches the card.
    """

    card: ModelCard  #: attached by the factory (``zoo.create_model``)

    def __init__(self, in_shape: tuple[int, ...], num_classes: int, depth: int, width: int,
                 activation: str, dropout: float, batch_norm: bool) -> None:
        super().__init__()
        self.in_shape = in_shape
        self.depth = depth
        self.flatten = nn.Flatten()
        sizes = [math.prod(in_shape)] + [width] * depth + [num_classes]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(width) for _ in range(depth)) \
            if batch_norm else None
        self.acts = nn.ModuleList(make_activation(activation) for _ in range(depth))
        self.drops = nn.ModuleList(nn.Dropout(dropout) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_batch(x, owner="mlp", shape=self.in_shape, dtype="float32")
        h = self.flatten(x)                                              # [B, F]
        for i in range(self.depth):
            h = self.layers[i](h)
            if self.norms is not None:
                h = self.norms[i](h)
            h = self.drops[i](self.acts[i](h))
        return self.layers[self.depth](h)                                # [B, K]


@register_model("mlp")
def mlp(*, input_shape: Sequence[int] = (1, 8, 8), num_classes: int = 10,
        class_names: Sequence[str] | None = None, depth: int = 2, width: int = 64,
        activation: str = "relu", init: str = "default", init_std: float = 0.01,
        bias_init: float | None = None, dropout: float = 0.0, batch_norm: bool = False,
        modality: str | None = None) -> MLP:
    """A multilayer perceptron on flattened float input.

    Parameters
    ----------
    input_shape : shape of one sample, e.g. ``(1, 8, 8)`` (digits) or ``(F,)`` (tabular).
    num_classes, class_names : the label space (names default to ``"0".."K-1"``).
    depth : number of hidden layers (0 = logistic regression).
    width : units per hidden layer.
    activation : one of ``relu, tanh, sigmoid, gelu, leaky_relu``.
    init : one of ``default, xavier, he, small-normal`` (``init_std`` for the latter).
    bias_init : if given, every hidden layer's bias starts at this constant (a large negative
        value with ReLU leaves most units dead from the start).
    dropout : dropout after each hidden activation.
    batch_norm : BatchNorm1d between each hidden Linear and its activation.
    modality : ``"image"`` or ``"tabular"``; default image for 3-d shapes, else tabular.

    Examples
    --------
    >>> import torch, zoo
    >>> model = zoo.create_model("mlp", depth=3, activation="sigmoid")
    >>> model(torch.zeros(2, 1, 8, 8)).shape, model.card.modality.value, len(model.layers)
    (torch.Size([2, 10]), 'image', 4)
    """
    if not isinstance(input_shape, (list, tuple)) or not input_shape:
        raise InvalidInputError(
            f"The 'input_shape' parameter of mlp must be a non-empty list or tuple of sizes, "
            f"e.g. (1, 8, 8) or (20,). Got {input_shape!r} instead.")
    shape = check_input_shape(input_shape, owner=_OWNER, ndim=len(input_shape), what="")
    k, names = check_class_names(class_names, num_classes, owner=_OWNER)
    d = check_int(depth, "depth", owner=_OWNER, min=0)
    w = check_int(width, "width", owner=_OWNER, min=1)
    p = check_float(dropout, "dropout", owner=_OWNER, min=0.0, max=0.99)
    bn = check_bool(batch_norm, "batch_norm", owner=_OWNER)
    b0 = check_float(bias_init, "bias_init", owner=_OWNER, allow_none=True)
    if modality is None:
        modality = "image" if len(shape) == 3 else "tabular"
    check_choice(modality, "modality", ["image", "tabular"], owner=_OWNER)
    make_activation(activation, owner=_OWNER)       # validates the name
    model = MLP(shape, k, d, w, activation, p, bn)  # type: ignore[arg-type]
    init_weights(model, init, activation=activation, std=init_std, owner=_OWNER)
    if b0 is not None:
        with torch.no_grad():
            for layer in model.layers[:d]:
                cast(nn.Linear, layer).bias.fill_(b0)
    kwargs: dict[str, Any] = {
        "input_shape": list(shape), "num_classes": k, "class_names": names, "depth": d,
        "width": w, "activation": activation, "init": init, "init_std": float(init_std),
        "bias_init": b0, "dropout": p, "batch_norm": bn, "modality": modality}
    model.card = make_card(name="mlp", modality=modality, input_shape=shape,
                           input_dtype="float32", class_names=names, layers={}, kwargs=kwargs)
    return model
