"""A small Transformer encoder for token-id text classification.

Input ``[B, L]`` int64 token ids (0 = padding, 1 = unknown). Token embedding (``padding_idx=0``)
plus a learned positional embedding, an ``nn.TransformerEncoder`` that never attends to padding,
masked mean pooling over the real tokens (plus, by default, the mean of the token embeddings: a
bag-of-embeddings path that trains fast on small corpora), dropout and a linear head. Trailing
padding never changes a prediction. :meth:`TextTransformer.attention_maps` returns the attention
weights for an attention view.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from explain._validation import check_float, check_int
from explain.card import ModelCard
from explain.errors import DataMismatchError, InvalidInputError
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

__all__ = ["TextTransformer", "transformer"]

_OWNER = "transformer"


class TextTransformer(nn.Module):
    """Embeddings -> Transformer encoder -> masked mean pool -> linear; ``[B, L]`` -> ``[B, K]``.

    Build it with :func:`transformer` (``zoo.create_model("transformer")``), which validates the
    options and attaches the card. ``card.layers["embedding"]`` is ``"embed"``.
    """

    card: ModelCard  #: attached by the factory (``zoo.create_model``)

    def __init__(self, vocab_size: int, max_len: int, num_classes: int, d_model: int, heads: int,
                 layers: int, ff: int, dropout: float, norm_first: bool, activation: str,
                 embed_skip: bool, embed_std: float) -> None:
        super().__init__()
        self.vocab_size, self.max_len, self.embed_skip = vocab_size, max_len, embed_skip
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=0)
        self.pos = nn.Embedding(max_len, d_model)
        with torch.no_grad():  # small embeddings (BERT/GPT style) learn fast at a small lr
            nn.init.normal_(self.embed.weight, 0.0, embed_std)
            nn.init.normal_(self.pos.weight, 0.0, embed_std)
            self.embed.weight[0].zero_()
        self.embed_dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            d_model, heads, dim_feedforward=ff, dropout=dropout,
            activation=make_activation(activation), batch_first=True, norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(
            layer, layers, norm=nn.LayerNorm(d_model) if norm_first else None,
            enable_nested_tensor=False)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(d_model, num_classes)

    def _prepare(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Check ids, drop padding beyond ``max_len``; return ids ``[B, L]`` and the pad mask."""
        check_batch(ids, owner="transformer", shape=(None,), dtype="int64")
        if ids.shape[1] > self.max_len:
            if bool((ids[:, self.max_len:] != 0).any()):
                raise DataMismatchError(
                    f"transformer takes at most max_len={self.max_len} tokens. Got sequences of "
                    f"{ids.shape[1]} tokens with real tokens past position {self.max_len}; "
                    f"truncate them or rebuild the model with a larger max_len.")
            ids = ids[:, : self.max_len]
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size):
            raise DataMismatchError(
                f"transformer takes token ids in 0..{self.vocab_size - 1} (vocab_size="
                f"{self.vocab_size}). Got ids in {int(ids.min())}..{int(ids.max())}; encode the "
                f"text with the data set's vocabulary or rebuild with a larger vocab_size.")
        pad = ids == 0                                                   # [B, L]
        # An all-padding row would make attention softmax over nothing (NaN): let it see
        # position 0 (a padding token whose embedding is zero).
        first = torch.zeros_like(pad)
        first[:, :1] = True
        pad = pad & ~(pad.all(dim=1, keepdim=True) & first)
        return ids, pad

    def _embed(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tok = self.embed(ids)                                            # [B, L, D]
        pos = self.pos(torch.arange(ids.shape[1], device=ids.device))    # [L, D]
        return tok, tok + pos

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids, pad = self._prepare(ids)
        tok, h = self._embed(ids)
        h = self.encoder(self.embed_dropout(h), src_key_padding_mask=pad)  # [B, L, D]
        keep = (~pad).unsqueeze(-1)                                      # [B, L, 1]
        count = keep.sum(dim=1).clamp(min=1)                             # [B, 1]
        pooled = torch.where(keep, h, torch.zeros_like(h)).sum(dim=1) / count
        if self.embed_skip:
            pooled = pooled + torch.where(keep, tok, torch.zeros_like(tok)).sum(dim=1) / count
        return self.head(self.dropout(pooled))

    def attention_maps(self, ids: torch.Tensor) -> torch.Tensor:
        """Attention weights of every layer and head, computed in eval mode without gradients.

        Parameters
        ----------
        ids : int64 token ids ``[B, L]``.

        Returns
        -------
        torch.Tensor
            ``[layers, B, heads, L', L']`` (``L' = min(L, max_len)``); row ``i`` of a map is how
            token ``i`` attends to every token; padding keys get weight 0.

        Examples
        --------
        >>> import torch, zoo
        >>> model = zoo.create_model("transformer", vocab_size=50, d_model=16, heads=2)
        >>> maps = model.attention_maps(torch.tensor([[5, 6, 7, 0]]))
        >>> tuple(maps.shape), round(float(maps[0, 0, 0, 0].sum()), 4), float(maps[..., 3].max())
        ((2, 1, 2, 4, 4), 1.0, 0.0)
        """
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                ids, pad = self._prepare(ids)
                _, h = self._embed(ids)
                maps = []
                for layer in self.encoder.layers:
                    x = layer.norm1(h) if layer.norm_first else h
                    _, w = layer.self_attn(x, x, x, key_padding_mask=pad, need_weights=True,
                                           average_attn_weights=False)   # [B, heads, L, L]
                    maps.append(w)
                    h = layer(h, src_key_padding_mask=pad)
                return torch.stack(maps)
        finally:
            self.train(was_training)


@register_model("transformer")
def transformer(*, input_shape: Sequence[int | None] = (64,), num_classes: int = 2,
                class_names: Sequence[str] | None = None, vocab_size: int = 20000,
                d_model: int = 64, heads: int = 4, layers: int = 2, ff: int = 128,
                dropout: float = 0.1, max_len: int | None = None, norm_first: bool = False,
                activation: str = "relu", embed_skip: bool = True, embed_std: float = 0.02,
                init: str = "default", init_std: float = 0.02) -> TextTransformer:
    """A small Transformer text classifier on int64 token ids ``[L]`` (0 = padding).

    Parameters
    ----------
    input_shape : ``(L,)``, the padded length of one sample (``None``: any length).
    num_classes, class_names : the label space (names default to ``"0".."K-1"``).
    vocab_size : number of token ids (0 = padding, 1 = unknown).
    d_model, heads, layers, ff : width, attention heads (dividing ``d_model``), encoder layers
        and feed-forward width.
    dropout : dropout on the embeddings, inside the encoder and before the head.
    max_len : positions of the learned positional embedding; default ``L`` (512 if ``L`` is
        None). Longer inputs are accepted when everything past ``max_len`` is padding.
    norm_first : pre-LayerNorm encoder layers (plus a final LayerNorm).
    activation : feed-forward activation, ``relu`` or ``gelu``.
    embed_skip : add the mean token embedding to the pooled encoder output.
    embed_std : standard deviation of the token and positional embeddings at initialisation
        (PyTorch's N(0, 1) learns several times slower on small corpora).
    init : one of ``default, xavier, he, small-normal`` (``init_std`` for the latter, which
        re-initialises the embeddings too).

    Examples
    --------
    >>> import torch, zoo
    >>> model = zoo.create_model("transformer", vocab_size=50, d_model=16, heads=2).eval()
    >>> ids = torch.tensor([[5, 6, 7, 0]])
    >>> longer = torch.tensor([[5, 6, 7, 0, 0, 0]])
    >>> torch.allclose(model(ids), model(longer), atol=1e-6), model.card.layers
    (True, {'embedding': 'embed'})
    """
    shape = check_input_shape(input_shape, owner=_OWNER, ndim=1, what="(L,)", variable=(0,))
    k, names = check_class_names(class_names, num_classes, owner=_OWNER)
    vocab = check_int(vocab_size, "vocab_size", owner=_OWNER, min=2)
    d = check_int(d_model, "d_model", owner=_OWNER, min=1)
    h = check_int(heads, "heads", owner=_OWNER, min=1)
    if d % h:
        raise InvalidInputError(
            f"The 'heads' parameter of transformer must divide d_model={d}. Got heads={h} "
            f"instead; pick heads in {[i for i in range(1, d + 1) if d % i == 0][:8]}.")
    nl = check_int(layers, "layers", owner=_OWNER, min=1)
    f = check_int(ff, "ff", owner=_OWNER, min=1)
    p = cast(float, check_float(dropout, "dropout", owner=_OWNER, min=0.0, max=0.99))
    default_len = shape[0] if shape[0] is not None else 512
    ml = check_int(default_len if max_len is None else max_len, "max_len", owner=_OWNER, min=1)
    nf = check_bool(norm_first, "norm_first", owner=_OWNER)
    skip = check_bool(embed_skip, "embed_skip", owner=_OWNER)
    estd = cast(float, check_float(embed_std, "embed_std", owner=_OWNER, min=0.0,
                                   min_inclusive=False))
    make_activation(activation, owner=_OWNER, choices=["relu", "gelu"])  # validates the name
    model = TextTransformer(vocab, ml, k, d, h, nl, f, p, nf, activation, skip, estd)
    init_weights(model, init, activation=activation, std=init_std, owner=_OWNER)
    kwargs: dict[str, Any] = {
        "input_shape": list(shape), "num_classes": k, "class_names": names, "vocab_size": vocab,
        "d_model": d, "heads": h, "layers": nl, "ff": f, "dropout": p, "max_len": ml,
        "norm_first": nf, "activation": activation, "embed_skip": skip, "embed_std": estd,
        "init": init, "init_std": float(init_std)}
    model.card = make_card(name="transformer", modality="text", input_shape=shape,
                           input_dtype="int64", class_names=names, layers={"embedding": "embed"},
                           kwargs=kwargs)
    return model
