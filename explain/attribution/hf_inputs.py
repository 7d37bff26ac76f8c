"""Hugging Face-style inputs for :func:`explain.attribute`: a ``BatchEncoding`` or any mapping.

``explain.attribute(model, enc)`` with ``enc = tokenizer(texts, padding=True,
return_tensors="pt")`` (or any mapping holding ``input_ids`` and optionally ``attention_mask``,
``token_type_ids`` and other model inputs) gives one score per token: ``values`` shaped
``[batch, tokens]``, padding positions (``attention_mask == 0``) exactly 0. Every key the model
takes is passed to it unchanged as a keyword argument; tokenizer-only keys
(``special_tokens_mask``, ``offset_mapping``, ``length``, ``overflow_to_sample_mapping``) are
used or dropped, never passed on; ``labels`` is dropped (a model given labels returns a loss).

Token baselines
---------------
Attributions are taken at the input-embedding layer (``model.get_input_embeddings()`` where the
model has it, else the card's ``"embedding"`` role or the first ``nn.Embedding``). The baseline
of each real token is the embedding of the ``[PAD]`` token (the tokenizer's ``pad_token_id``,
else ``model.config.pad_token_id``, else 0); special tokens (``[CLS]``, ``[SEP]``, ``<s>``,
``</s>``, ...) and padding keep their own ids, so they are held fixed and score about 0.
``baseline_token=`` overrides the replacement: an id, or a token string such as ``"[MASK]"``
(with ``tokenizer=``). Special tokens are found from, in order: a ``special_tokens_mask`` key;
a fast tokenizer's encodings on a ``BatchEncoding``; ``tokenizer.all_special_ids``; the ids in
``model.config`` (``cls/sep/bos/eos/pad_token_id``). If none is available a warning says so.

Readable tokens
---------------
:func:`merge_word_pieces` (and :func:`word_scores` on an :class:`Attribution`) merge sub-word
pieces into words for display, summing their scores: WordPiece ``play ##ing`` -> ``playing``,
SentencePiece ``▁play ing`` and byte-level BPE ``Ġplay ing`` likewise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from explain._core.outputs import LogitsModel, logits_of, unwrap
from explain._core.tensors import pad_id_of
from explain.attribution.result import Attribution
from explain.card import Modality, ModelCard
from explain.errors import InvalidInputError, InvalidTypeError

__all__ = ["is_token_mapping", "TokenBatch", "token_batch", "KeywordModel", "baseline_ids",
           "attribute_tokens", "WordScores", "merge_word_pieces", "word_scores"]

#: Keys a tokenizer returns that are not model inputs.
TOKENIZER_ONLY = ("special_tokens_mask", "offset_mapping", "length", "overflow_to_sample_mapping")
_DROPPED = ("labels", "label")
_CONFIG_SPECIAL = ("cls_token_id", "sep_token_id", "bos_token_id", "eos_token_id",
                   "pad_token_id", "decoder_start_token_id")


def is_token_mapping(inputs: Any) -> bool:
    """True for a ``BatchEncoding`` or any mapping with an ``input_ids`` entry."""
    return isinstance(inputs, Mapping) and "input_ids" in inputs


@dataclass(frozen=True)
class TokenBatch:
    """A checked mapping batch.

    Attributes
    ----------
    input_ids : ``[batch, tokens]`` int64.
    attention_mask : ``[batch, tokens]`` bool (all True when the mapping had none).
    names, values : the other model inputs, in the mapping's order (passed as keywords).
    special : ``[batch, tokens]`` bool, the special tokens held fixed in the baseline.
    special_source : where ``special`` came from (``""`` when unknown).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    names: tuple[str, ...]
    values: tuple[Any, ...]
    special: torch.Tensor
    special_source: str


def _ids(inputs: Mapping[str, Any]) -> torch.Tensor:
    ids = inputs["input_ids"]
    if not isinstance(ids, torch.Tensor):
        raise InvalidTypeError(
            "The 'input_ids' of the mapping given to attribute must be a torch.Tensor. Got "
            f"{type(ids).__name__} instead; tokenize with return_tensors='pt'.")
    if ids.dim() != 2 or ids.shape[0] == 0 or ids.is_floating_point():
        raise InvalidInputError(
            "The 'input_ids' of the mapping given to attribute must be integer token ids "
            f"[batch >= 1, tokens]. Got shape {list(ids.shape)} ({ids.dtype}) instead; "
            "tokenize a list of texts with padding=True.")
    return ids.long()


def _special(inputs: Mapping[str, Any], ids: torch.Tensor, tokenizer: Any,
             model: nn.Module) -> tuple[torch.Tensor, str]:
    given = inputs.get("special_tokens_mask")
    if isinstance(given, torch.Tensor) and given.shape == ids.shape:
        return given.to(ids.device).bool(), "the special_tokens_mask key"
    encodings = getattr(inputs, "encodings", None)
    if encodings and len(encodings) == ids.shape[0] and all(
            len(getattr(e, "special_tokens_mask", ())) == ids.shape[1] for e in encodings):
        rows = [list(e.special_tokens_mask) for e in encodings]
        return torch.tensor(rows, dtype=torch.bool, device=ids.device), "the tokenizer's encodings"
    known = list(getattr(tokenizer, "all_special_ids", None) or [])
    source = "tokenizer.all_special_ids"
    if not known:
        config = getattr(unwrap(model), "config", None)
        known = [v for k in _CONFIG_SPECIAL if isinstance(v := getattr(config, k, None), int)]
        source = "model.config"
    if not known:
        return torch.zeros_like(ids, dtype=torch.bool), ""
    return torch.isin(ids, torch.tensor(known, device=ids.device)), source


def token_batch(inputs: Mapping[str, Any], *, tokenizer: Any = None,
                model: nn.Module | None = None) -> TokenBatch:
    """Check a mapping batch and split it into ids, mask, model keywords and special tokens.

    Raises
    ------
    InvalidTypeError, InvalidInputError : ``input_ids`` is not ``[batch, tokens]`` integers, or
        ``attention_mask`` does not have its shape.
    """
    ids = _ids(inputs)
    mask = inputs.get("attention_mask")
    if mask is None:
        mask = torch.ones_like(ids, dtype=torch.bool)
    elif not isinstance(mask, torch.Tensor) or mask.shape != ids.shape:
        raise InvalidInputError(
            "The 'attention_mask' of the mapping given to attribute must have the shape of "
            f"input_ids {list(ids.shape)}. Got {list(getattr(mask, 'shape', []))} "
            f"({type(mask).__name__}) instead.")
    names = tuple(k for k in inputs if k != "input_ids" and k not in TOKENIZER_ONLY
                  and k not in _DROPPED)
    special, source = _special(inputs, ids, tokenizer, model if model is not None else nn.Module())
    return TokenBatch(ids, mask.bool(), names, tuple(inputs[k] for k in names), special, source)


class KeywordModel(LogitsModel):
    """``forward(input_ids, *values) = logits_of(model(input_ids=..., **dict(names, values)))``.

    Transparent like :class:`~explain._core.outputs.LogitsModel` (same module names), so the
    attribution engine, which calls ``model(ids, *args)``, drives a keyword-only HF model.
    """

    def __init__(self, model: nn.Module, names: Sequence[str]) -> None:
        super().__init__(unwrap(model))
        self.__dict__["_names"] = tuple(names)

    def forward(self, input_ids: torch.Tensor, *values: Any) -> torch.Tensor:  # type: ignore[override]
        kwargs = dict(zip(self.__dict__["_names"], values))
        return logits_of(self.wrapped(input_ids=input_ids, **kwargs),
                         owner=f"the model ({type(self.wrapped).__name__})")


def _baseline_token(baseline_token: Any, tokenizer: Any, model: nn.Module) -> int:
    if baseline_token is None:
        return pad_id_of(tokenizer, model)
    if isinstance(baseline_token, bool) or not isinstance(baseline_token, (int, str)):
        raise InvalidTypeError(
            "The 'baseline_token' parameter of attribute must be a token id (int) or a token "
            f"string such as '[MASK]'. Got {type(baseline_token).__name__} instead.")
    if isinstance(baseline_token, int):
        return baseline_token
    convert = getattr(tokenizer, "convert_tokens_to_ids", None)
    if convert is None:
        raise InvalidInputError(
            f"The 'baseline_token' parameter of attribute is the string {baseline_token!r}, "
            "which needs tokenizer= to become an id. Pass tokenizer=..., or the id itself.")
    tid = convert(baseline_token)
    unk = getattr(tokenizer, "unk_token_id", None)
    if not isinstance(tid, int) or (tid == unk and baseline_token != getattr(
            tokenizer, "unk_token", None)):
        raise InvalidInputError(
            f"The 'baseline_token' parameter of attribute must be a token of the tokenizer's "
            f"vocabulary. Got {baseline_token!r}, which it does not know; use e.g. "
            f"{getattr(tokenizer, 'mask_token', None) or getattr(tokenizer, 'pad_token', '[PAD]')!r}.")
    return tid


def baseline_ids(batch: TokenBatch, token_id: int) -> torch.Tensor:
    """``input_ids`` with every real, non-special token replaced by ``token_id``."""
    keep = batch.special | ~batch.attention_mask
    return torch.where(keep, batch.input_ids, torch.full_like(batch.input_ids, token_id))


def _embedding_card(model: nn.Module, card: ModelCard | None, batch: TokenBatch) -> ModelCard | None:
    """A card naming ``get_input_embeddings()`` when the engine would otherwise pick another
    ``nn.Embedding`` (the first one found)."""
    if card is not None and "embedding" in card.layers:
        return card
    get = getattr(unwrap(model), "get_input_embeddings", None)
    emb = get() if callable(get) else None
    names = {id(m): n for n, m in model.named_modules()}
    first = next((m for m in model.modules() if isinstance(m, nn.Embedding)), None)
    if emb is None or first is None or emb is first or id(emb) not in names:
        return card
    with torch.no_grad():
        k = int(model(batch.input_ids[:1], *[v[:1] if isinstance(v, torch.Tensor) else v
                                             for v in batch.values]).shape[-1])
    base: dict[str, Any] = card.to_dict() if card is not None else {
        "name": type(unwrap(model)).__name__, "modality": Modality.TEXT,
        "input_shape": (None,), "input_dtype": "int64", "num_classes": k,
        "class_names": tuple(str(i) for i in range(k))}
    base["layers"] = {**dict(base.get("layers") or {}), "embedding": names[id(emb)]}
    return ModelCard.from_dict(base)


def attribute_tokens(model: nn.Module, inputs: Mapping[str, Any], target: Any = None,
                     method: str = "integrated_gradients", *, card: ModelCard | None = None,
                     tokenizer: Any = None, baseline_token: Any = None,
                     **options: Any) -> Attribution:
    """:func:`explain.attribute` for a mapping batch (see the module docstring).

    ``baselines=`` may give baseline token ids (broadcast to ``input_ids``) instead of
    ``baseline_token``. Returns an :class:`Attribution` whose ``values`` are ``[batch, tokens]``
    (0 at padding), ``inputs`` the ``input_ids`` and ``baselines`` the baseline ids.
    """
    from explain.attribution.front import get_explainer  # avoid an import cycle

    if "additional_forward_args" in options:
        raise InvalidInputError(
            "The 'additional_forward_args' parameter of attribute cannot be combined with a "
            "mapping input. Put the extra model inputs into the mapping as keys instead.")
    batch = token_batch(inputs, tokenizer=tokenizer, model=model)
    user_base = options.pop("baselines", None)
    if user_base is not None and baseline_token is not None:
        raise InvalidInputError("Pass either 'baselines' (token ids) or 'baseline_token' to "
                                "attribute, not both.")
    base = (torch.as_tensor(user_base).long().expand_as(batch.input_ids).clone()
            if user_base is not None
            else baseline_ids(batch, _baseline_token(baseline_token, tokenizer, model)))
    net = KeywordModel(model, batch.names)
    card = _embedding_card(net, card, batch)
    result = get_explainer(method)(net, card).explain(
        batch.input_ids, target, baselines=base, additional_forward_args=batch.values,
        pad_id=options.pop("pad_id", pad_id_of(tokenizer, model)), **options)
    notes = list(result.warnings)
    if not batch.special_source and user_base is None:
        notes.append("special tokens unknown (no tokenizer=, special_tokens_mask or model "
                     "config ids): only padding is held fixed in the baseline")
    mask = batch.attention_mask.cpu()
    values = torch.where(mask, result.values, torch.zeros_like(result.values))
    return dataclasses.replace(
        result, values=values, inputs=batch.input_ids.detach().cpu(),
        baselines=None if result.baselines is None else base.detach().cpu(),
        warnings=tuple(notes))


@dataclass(frozen=True)
class WordScores:
    """Scores of whole words for display.

    Attributes
    ----------
    words : the words (special tokens kept as they are; padding dropped).
    scores : one score per word: the sum of its pieces' scores.
    positions : the token positions merged into each word.
    merged : some word was made of more than one piece.
    note : what was done, to show beside a figure (``""`` when nothing was merged).
    """

    words: tuple[str, ...]
    scores: tuple[float, ...]
    positions: tuple[tuple[int, ...], ...]
    merged: bool
    note: str


def _starts_word(token: str, scheme: str) -> bool:
    if scheme == "wordpiece":
        return not token.startswith("##")
    return token.startswith("\u2581" if scheme == "sentencepiece" else "\u0120")


def _clean(token: str, scheme: str) -> str:
    if scheme == "wordpiece":
        return token[2:] if token.startswith("##") else token
    return token.lstrip("\u2581\u0120")


def merge_word_pieces(tokens: Sequence[str], scores: Sequence[float] | torch.Tensor, *,
                      mask: Sequence[bool] | torch.Tensor | None = None,
                      special: Sequence[str] = ()) -> WordScores:
    """Merge sub-word pieces into words, summing their scores.

    Parameters
    ----------
    tokens : the tokens of one sample (``tokenizer.convert_ids_to_tokens(ids)``).
    scores : one score per token.
    mask : False at padding (dropped); default: keep every token.
    special : tokens never merged with a neighbour (``tokenizer.all_special_tokens``);
        bracketed tokens such as ``[CLS]`` and ``<s>`` are treated as special too.

    Examples
    --------
    >>> ws = merge_word_pieces(["[CLS]", "play", "##ing", "well", "[SEP]"], [0, 1.0, 0.5, 2.0, 0])
    >>> ws.words, ws.scores, ws.note
    (('[CLS]', 'playing', 'well', '[SEP]'), (0.0, 1.5, 2.0, 0.0), 'word pieces merged into words; their scores summed')
    """
    vals = [float(s) for s in (scores.tolist() if isinstance(scores, torch.Tensor) else scores)]
    keep = ([bool(m) for m in (mask.tolist() if isinstance(mask, torch.Tensor) else mask)]
            if mask is not None else [True] * len(tokens))
    if not len(tokens) == len(vals) == len(keep):
        raise InvalidInputError(
            f"merge_word_pieces needs one score (and mask entry) per token. Got {len(tokens)} "
            f"tokens, {len(vals)} scores and {len(keep)} mask entries instead.")
    scheme = ("wordpiece" if any(t.startswith("##") for t in tokens) else
              "sentencepiece" if any(t.startswith("\u2581") for t in tokens) else
              "bytelevel" if any(t.startswith("\u0120") for t in tokens) else "none")
    fixed = set(special)
    words: list[list[Any]] = []   # [text, score, positions, is_special]
    for i, (tok, val, k) in enumerate(zip(tokens, vals, keep)):
        if not k:
            continue
        is_special = tok in fixed or (len(tok) > 2 and tok[0] + tok[-1] in ("[]", "<>"))
        joins = (scheme != "none" and not is_special and words and not words[-1][3]
                 and not _starts_word(tok, scheme))
        if joins:
            words[-1][0] += _clean(tok, scheme)
            words[-1][1] += val
            words[-1][2].append(i)
        else:
            words.append([tok if is_special else _clean(tok, scheme), val, [i], is_special])
    merged = any(len(w[2]) > 1 for w in words)
    return WordScores(tuple(w[0] for w in words), tuple(w[1] for w in words),
                      tuple(tuple(w[2]) for w in words), merged,
                      "word pieces merged into words; their scores summed" if merged else "")


def word_scores(attr: Attribution, tokenizer: Any, index: int = 0, *,
                attention_mask: torch.Tensor | None = None) -> WordScores:
    """The words of sample ``index`` of a token :class:`Attribution` and their summed scores.

    Padding is dropped: positions where ``attention_mask`` (``[batch, tokens]``) is 0, else
    those holding the tokenizer's ``pad_token_id``.
    """
    convert = getattr(tokenizer, "convert_ids_to_tokens", None)
    if convert is None:
        raise InvalidTypeError(
            "The 'tokenizer' parameter of word_scores must have convert_ids_to_tokens. Got "
            f"{type(tokenizer).__name__} instead; pass a transformers tokenizer.")
    ids = attr.inputs[index].long()
    if attention_mask is not None:
        mask = attention_mask[index].bool().cpu()
    else:
        pad = getattr(tokenizer, "pad_token_id", None)
        mask = ids != pad if isinstance(pad, int) else torch.ones_like(ids, dtype=torch.bool)
    tokens = [str(t) for t in convert(ids.tolist())]
    return merge_word_pieces(tokens, attr.values[index], mask=mask,
                             special=list(getattr(tokenizer, "all_special_tokens", ()) or ()))
