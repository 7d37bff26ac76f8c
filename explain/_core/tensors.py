"""Torch helpers several stages share: modality inference, device look-up, eval copies,
batched predict, token decoding and the padding id.

Examples
--------
>>> import torch
>>> infer_modality(torch.zeros(2, 1, 8, 8)).value, infer_modality(torch.zeros(2, 5, dtype=torch.long)).value
('image', 'text')
>>> predict(torch.nn.Linear(3, 2), torch.zeros(5, 3)).shape
torch.Size([5, 2])
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from explain._core.outputs import logits_of, unwrap
from explain.card import Modality, ModelCard, card_of
from explain.errors import DataMismatchError, InvalidInputError

__all__ = ["infer_modality", "device_of", "eval_copy", "predict", "decode_tokens", "config_id",
           "pad_id_of", "valid_frames"]

#: Float batches by rank: [batch, features], [batch, time, features], [batch, C, H, W].
_BY_RANK = {2: Modality.TABULAR, 3: Modality.SEQUENCE, 4: Modality.IMAGE}


def infer_modality(inputs: torch.Tensor, card: ModelCard | None = None, *,
                   modality: str | Modality | None = None, model: nn.Module | None = None,
                   owner: str = "deepscope") -> Modality:
    """The modality of a batch: ``modality`` if given, else the card's (or ``model``'s card),
    else from the batch: integer ids -> text; float 2-D -> tabular, 3-D -> sequence,
    4-D -> image. Any other rank raises :class:`explain.InvalidInputError`.
    """
    if modality is not None:
        return Modality(getattr(modality, "value", modality))
    if card is None and model is not None:
        card = card_of(model)
    if card is not None:
        return card.modality
    if not inputs.is_floating_point():
        return Modality.TEXT
    if inputs.dim() not in _BY_RANK:
        raise InvalidInputError(
            f"The inputs of {owner} must be a batch [batch, features], [batch, time, features] "
            f"or [batch, channels, height, width]. Got shape {tuple(inputs.shape)} instead. "
            "Pass modality= explicitly or give the model a card (explain.ModelCard).")
    return _BY_RANK[inputs.dim()]


def device_of(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a parameter-free model)."""
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def eval_copy(model: nn.Module) -> nn.Module:
    """The model itself if it is in eval mode, else an eval-mode deep copy (the user's model
    is never flipped)."""
    if not model.training:
        return model
    return copy.deepcopy(model).eval()


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 512, *,
            owner: str = "the audit") -> torch.Tensor:
    """Logits ``[n, classes]`` (float32, CPU) of ``x`` in batches, without autograd.

    The model may return any form :func:`explain._core.outputs.logits_of` accepts (a tensor,
    a ``ModelOutput``/mapping with ``logits``, a tuple whose first item is the logits).

    A model that cannot take ``x`` raises :class:`explain.DataMismatchError` naming the
    per-sample shape and dtype instead of a traceback from inside the model.
    """
    dev = device_of(model)
    outs = []
    for i in range(0, x.shape[0], batch_size):
        try:
            raw = model(x[i:i + batch_size].to(dev))
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise DataMismatchError(
                f"The model could not take the data of {owner}: inputs of shape "
                f"{list(x.shape[1:])} ({x.dtype}) per sample raised {type(exc).__name__}: "
                f"{first}. Pass data the model was built for.") from exc
        outs.append(logits_of(raw).detach().float().cpu())
    logits = torch.cat(outs) if outs else torch.zeros(0, 0)
    if logits.ndim != 2:
        raise DataMismatchError(f"The model must return logits [batch, classes]. Got shape "
                                f"{list(logits.shape)} instead.")
    return logits


def config_id(model: nn.Module | None, name: str) -> int | None:
    """The int ``model.config.<name>`` (e.g. ``pad_token_id``) of a Hugging Face model (wrappers
    unwrapped), else ``None``."""
    v = getattr(getattr(unwrap(model), "config", None), name, None) if model is not None else None
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def pad_id_of(tokenizer: Any = None, model: nn.Module | None = None) -> int:
    """The padding token id: ``tokenizer.pad_token_id``, else ``model.config.pad_token_id``,
    else 0 (the zoo's convention). RoBERTa-style tokenizers pad with 1.

    Examples
    --------
    >>> class Tok:
    ...     pad_token_id = 1
    >>> pad_id_of(Tok()), pad_id_of(None, torch.nn.Linear(2, 2))
    (1, 0)
    """
    pad = getattr(tokenizer, "pad_token_id", None)
    if isinstance(pad, int) and not isinstance(pad, bool):
        return pad
    found = config_id(model, "pad_token_id")
    return 0 if found is None else found


def decode_tokens(ids: Sequence[int] | torch.Tensor, vocab: Any = None,
                  decode: Callable[[list[int]], Any] | None = None, *,
                  skip_padding: bool = False, pad_id: int = 0) -> list[str]:
    """Token strings for ``ids``: through ``decode`` (a callable on a list of ids), else a
    vocabulary (``itos`` / ``tokens`` / ``id_to_token`` tables, or a ``decode``-like method, or a
    tokenizer's ``convert_ids_to_tokens``), else ``"<id>"``. ``skip_padding`` drops ``pad_id``.
    """
    flat = ids.reshape(-1).tolist() if isinstance(ids, torch.Tensor) else list(ids)
    ints = [int(i) for i in flat]
    if skip_padding:
        ints = [i for i in ints if i != pad_id]
    if decode is not None:
        out = decode(ints)
        return out.split() if isinstance(out, str) else [str(t) for t in out]
    if vocab is not None:
        for attr in ("itos", "tokens", "id_to_token", "idx2word"):
            table = getattr(vocab, attr, None)
            if isinstance(table, (list, tuple, dict)):
                return [str(table[i]) if (i in table if isinstance(table, dict)
                                          else 0 <= i < len(table)) else f"<{i}>" for i in ints]
        for attr in ("convert_ids_to_tokens", "decode_tokens", "lookup_tokens", "decode"):
            fn = getattr(vocab, attr, None)
            if callable(fn):
                out = fn(ints)
                if isinstance(out, str):
                    out = out.split()
                if len(out) == len(ints):
                    return [str(t) for t in out]
    return [f"<{i}>" for i in ints]


def valid_frames(x: torch.Tensor) -> torch.Tensor:
    """``[batch, time]`` bool: the frames of padded sequences ``[batch, time, features]`` up to
    each sequence's last non-zero frame (trailing all-zero frames are padding, as a packed RNN
    reads them).

    Examples
    --------
    >>> x = torch.tensor([[[1.0], [0.0], [2.0], [0.0]]])
    >>> valid_frames(x).tolist()
    [[True, True, True, False]]
    """
    idx = torch.arange(x.shape[1], device=x.device)
    length = torch.where((x != 0).any(-1), idx + 1, torch.zeros_like(idx)).amax(1)
    return idx[None, :] < length[:, None]
