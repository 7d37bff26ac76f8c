"""A recurrent classifier for padded multivariate sequences (GRU, LSTM or vanilla RNN).

Input ``[B, T, F]`` float32; trailing all-zero frames are padding. Lengths are derived from the
input (:func:`zoo.models._common.lengths_from_padding`) and the sequences are packed, so padding
never changes a prediction. The sequence summary is the last valid hidden state (both directions
when bidirectional) or the masked mean of the outputs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from explain._validation import check_choice, check_float, check_int
from explain.card import ModelCard
from explain.errors import InvalidInputError
from zoo.models._common import (
    check_batch,
    check_bool,
    check_class_names,
    check_input_shape,
    init_weights,
    lengths_from_padding,
    make_card,
)
from zoo.registry import register_model

__all__ = ["RecurrentNet", "rnn"]

_OWNER = "rnn"
_CELLS = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}


class RecurrentNet(nn.Module):
    """Packed recurrent encoder + linear head; ``[B, T, F]`` -> logits ``[B, K]``.

    Build it with :func:`rnn` (``zoo.create_model("rnn")``), which validates the options and
    attaches the card. ``card.layers["recurrent"]`` is ``"rnn"``.
    """

    card: ModelCard  #: attached by the factory (``zoo.create_model``)

    def __init__(self, features: int, num_classes: int, cell: str, hidden: int, layers: int,
                 bidirectional: bool, dropout: float, activation: str, pooling: str) -> None:
        super().__init__()
        self.features = features
        self.pooling = pooling
        extra = {"nonlinearity": activation} if cell == "rnn" else {}
        self.rnn = _CELLS[cell](features, hidden, num_layers=layers, batch_first=True,
                                bidirectional=bidirectional,
                                dropout=dropout if layers > 1 else 0.0, **extra)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_batch(x, owner="rnn", shape=(None, self.features), dtype="float32")
        t = x.shape[1]
        lengths = lengths_from_padding(x).clamp(min=1).cpu()            # [B]
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        with _cudnn_guard(x, self.training):
            out, state = self.rnn(packed)
        if self.pooling == "mean":
            seq, _ = pad_packed_sequence(out, batch_first=True, total_length=t)  # [B, T, D*H]
            mask = (torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)).to(x.device)
            seq = torch.where(mask.unsqueeze(-1), seq, torch.zeros_like(seq))
            summary = seq.sum(1) / lengths.to(x.device, seq.dtype).unsqueeze(1)
        else:
            h = state[0] if isinstance(state, tuple) else state         # [layers*D, B, H]
            d = 2 if self.rnn.bidirectional else 1
            summary = torch.cat(list(h[-d:]), dim=-1)                    # [B, D*H]
        return self.head(self.dropout(summary))


def _cudnn_guard(x: torch.Tensor, training: bool) -> contextlib.AbstractContextManager:
    """Disable cuDNN when gradients flow through an RNN in eval mode (attributions on CUDA):
    cuDNN's RNN backward only runs in training mode."""
    if x.is_cuda and not training and torch.is_grad_enabled():
        return torch.backends.cudnn.flags(enabled=False)
    return contextlib.nullcontext()


@register_model("rnn")
def rnn(*, input_shape: Sequence[int | None] = (None, 12), num_classes: int = 9,
        class_names: Sequence[str] | None = None, cell: str = "gru", hidden: int = 64,
        layers: int = 1, bidirectional: bool = False, dropout: float = 0.0,
        activation: str = "tanh", pooling: str = "last", init: str = "default",
        init_std: float = 0.01, modality: str = "sequence") -> RecurrentNet:
    """A recurrent classifier for ``[T, F]`` sequences padded with trailing zero frames.

    Parameters
    ----------
    input_shape : ``(T, F)``; ``T`` may be ``None`` (any length).
    num_classes, class_names : the label space (names default to ``"0".."K-1"``).
    cell : ``"gru"``, ``"lstm"`` or ``"rnn"`` (vanilla Elman RNN).
    hidden : hidden units per direction.
    layers : stacked recurrent layers.
    bidirectional : run a backward direction too.
    dropout : dropout before the head (and between stacked layers).
    activation : ``"tanh"`` or ``"relu"``; only ``cell="rnn"`` may use ``"relu"``.
    pooling : ``"last"`` (last valid hidden state) or ``"mean"`` (masked mean of the outputs).
    init : one of ``default, xavier, he, small-normal`` (``init_std`` for the latter).
    modality : ``"sequence"``, or ``"audio"`` for spectrogram frames ``[frames, mels]``.

    Examples
    --------
    >>> import torch, zoo
    >>> model = zoo.create_model("rnn", hidden=8).eval()
    >>> x = torch.randn(1, 5, 12)
    >>> padded = torch.cat([x, torch.zeros(1, 3, 12)], dim=1)
    >>> torch.allclose(model(x), model(padded)), model.card.layers
    (True, {'recurrent': 'rnn'})
    """
    shape = check_input_shape(input_shape, owner=_OWNER, ndim=2, what="(T, F)", variable=(0,))
    k, names = check_class_names(class_names, num_classes, owner=_OWNER)
    check_choice(cell, "cell", list(_CELLS), owner=_OWNER)
    check_choice(activation, "activation", ["tanh", "relu"], owner=_OWNER)
    if cell != "rnn" and activation != "tanh":
        raise InvalidInputError(
            f"The 'activation' parameter of rnn only applies to cell='rnn'; {cell!r} cells use "
            f"their own gates. Got activation={activation!r} with cell={cell!r}; use "
            f"cell='rnn' or leave activation='tanh'.")
    check_choice(pooling, "pooling", ["last", "mean"], owner=_OWNER)
    check_choice(modality, "modality", ["sequence", "audio"], owner=_OWNER)
    hid = check_int(hidden, "hidden", owner=_OWNER, min=1)
    nl = check_int(layers, "layers", owner=_OWNER, min=1)
    bi = check_bool(bidirectional, "bidirectional", owner=_OWNER)
    p = check_float(dropout, "dropout", owner=_OWNER, min=0.0, max=0.99)
    model = RecurrentNet(shape[1], k, cell, hid, nl, bi, p, activation, pooling)  # type: ignore[arg-type]
    init_weights(model, init, activation=activation, std=init_std, owner=_OWNER)
    kwargs: dict[str, Any] = {
        "input_shape": list(shape), "num_classes": k, "class_names": names, "cell": cell,
        "hidden": hid, "layers": nl, "bidirectional": bi, "dropout": p,
        "activation": activation, "pooling": pooling, "init": init, "init_std": float(init_std),
        "modality": modality}
    model.card = make_card(name="rnn", modality=modality, input_shape=shape,
                           input_dtype="float32", class_names=names,
                           layers={"recurrent": "rnn"}, kwargs=kwargs)
    return model
