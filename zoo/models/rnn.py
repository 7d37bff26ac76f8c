"""A recurrent classifier for padded multivariate sequences (GRU, LSTM or vanilla RNN).

Input ``[B, T, F]`` float32; trailing all-zero frames are padding. Lengths are derived from the
input (:func:`zoo.models._common.lengths_from_padding`) and a batch with padding is packed, so
padding never changes a prediction (a batch without padding runs unpacked: same result, half the
cost). The sequence summary is the last valid hidden state (both directions
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

__all__ = ["RecurrentNet", "rnn", "stack_frames"]

_OWNER = "rnn"
_CELLS = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}


class RecurrentNet(nn.Module):
    """Recurrent encoder (packed when padded) + linear head; ``[B, T, F]`` -> logits ``[B, K]``.

    Build it with :func:`rnn` (``zoo.create_model("rnn")``), which validates the options and
    attaches the card. ``card.layers["recurrent"]`` is ``"rnn"``.
    """

    card: ModelCard  #: attached by the factory (``zoo.create_model``)

    def __init__(self, features: int, num_classes: int, cell: str, hidden: int, layers: int,
                 bidirectional: bool, dropout: float, activation: str, pooling: str,
                 frame_stack: int = 1) -> None:
        super().__init__()
        self.features = features
        self.pooling = pooling
        self.frame_stack = frame_stack
        extra = {"nonlinearity": activation} if cell == "rnn" else {}
        self.rnn = _CELLS[cell](features * frame_stack, hidden, num_layers=layers, batch_first=True,
                                bidirectional=bidirectional,
                                dropout=dropout if layers > 1 else 0.0, **extra)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_batch(x, owner="rnn", shape=(None, self.features), dtype="float32")
        x = stack_frames(x, self.frame_stack)
        lengths = lengths_from_padding(x).clamp(min=1).cpu()            # [B]
        with _cudnn_guard(x, self.training):
            summary = _encode(self.rnn, x, lengths, self.pooling,
                              packed=bool((lengths < x.shape[1]).any()))
        return self.head(self.dropout(summary))


def stack_frames(x: torch.Tensor, k: int) -> torch.Tensor:
    """``[B, T, F]`` -> ``[B, ceil(T / k), k * F]``: each step sees ``k`` consecutive frames.

    Frame stacking (Sak et al., 2015, "Fast and accurate recurrent neural network acoustic
    models for speech recognition") keeps every input value but runs the recurrence ``k`` times
    fewer steps. The last step is zero-filled; trailing padding stays trailing padding.

    Examples
    --------
    >>> stack_frames(torch.arange(6.0).reshape(1, 3, 2), 2).tolist()
    [[[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 0.0, 0.0]]]
    """
    if k == 1:
        return x
    b, t, f = x.shape
    pad = -t % k
    if pad:
        x = torch.cat([x, x.new_zeros(b, pad, f)], dim=1)
    return x.reshape(b, (t + pad) // k, k * f)


def _encode(rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor, pooling: str, *,
            packed: bool) -> torch.Tensor:
    """The sequence summary ``[B, D*H]`` of ``x`` ``[B, T, F]`` with valid ``lengths`` ``[B]``.

    ``packed=False`` runs the padded tensor as it is, which is only right when every length is
    ``T`` (then it equals the packed result within float tolerance, at about half the cost:
    packing made a GRU over 101 equal-length frames 2x slower).
    """
    t = x.shape[1]
    if packed:
        seq_in = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, state = rnn(seq_in)
    else:
        out, state = rnn(x)
    if pooling == "mean":
        if not packed:
            return out.mean(1)
        seq, _ = pad_packed_sequence(out, batch_first=True, total_length=t)  # [B, T, D*H]
        mask = (torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)).to(x.device)
        seq = torch.where(mask.unsqueeze(-1), seq, torch.zeros_like(seq))
        return seq.sum(1) / lengths.to(x.device, seq.dtype).unsqueeze(1)
    h = state[0] if isinstance(state, tuple) else state                 # [layers*D, B, H]
    d = 2 if rnn.bidirectional else 1
    return torch.cat(list(h[-d:]), dim=-1)                               # [B, D*H]


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
        activation: str = "tanh", pooling: str = "last", frame_stack: int = 1,
        init: str = "default", init_std: float = 0.01,
        modality: str = "sequence") -> RecurrentNet:
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
    frame_stack : feed ``frame_stack`` consecutive frames per recurrent step
        (:func:`stack_frames`): the same input, ``frame_stack`` times fewer sequential steps.
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
    stack = check_int(frame_stack, "frame_stack", owner=_OWNER, min=1)
    model = RecurrentNet(shape[1], k, cell, hid, nl, bi, p, activation, pooling,  # type: ignore[arg-type]
                         stack)
    init_weights(model, init, activation=activation, std=init_std, owner=_OWNER)
    kwargs: dict[str, Any] = {
        "input_shape": list(shape), "num_classes": k, "class_names": names, "cell": cell,
        "hidden": hid, "layers": nl, "bidirectional": bi, "dropout": p,
        "activation": activation, "pooling": pooling, "frame_stack": stack, "init": init,
        "init_std": float(init_std),
        "modality": modality}
    model.card = make_card(name="rnn", modality=modality, input_shape=shape,
                           input_dtype="float32", class_names=names,
                           layers={"recurrent": "rnn"}, kwargs=kwargs)
    return model
