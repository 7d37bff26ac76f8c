"""Hugging Face-style audit data: mapping batches ``{"input_ids", "attention_mask",
"token_type_ids", "labels"}`` (a DataLoader of tokenizer batches, a Dataset of mapping rows, a
``datasets.Dataset`` in torch format).

The audit works on one tensor of inputs (predictions, attributions and trust metrics all
perturb and re-run it), so the mapping is reduced to its ``input_ids`` ``[n, tokens]`` (batches
of different lengths padded with the pad id) and the other model inputs are rebuilt from the
ids by :class:`DerivedInputsModel`: ``attention_mask = ids != pad_id`` and ``token_type_ids``
= 0 up to and including the first ``[SEP]``, 1 after it (0 at padding). Before the audit uses
them, the rebuilt inputs are compared with the ones the data gave; any difference raises
:class:`explain.DataMismatchError`, so the audited function is exactly the model on the data.

Keys: ``labels`` (or ``label``) are the labels; tokenizer-only keys (``special_tokens_mask``,
``offset_mapping``, ``length``, ``overflow_to_sample_mapping``) and keys that are not per-token
tensors (``idx``, text columns) are dropped; another per-token tensor raises, naming it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from explain._core.outputs import LogitsModel, logits_of, unwrap
from explain._core.tensors import config_id, pad_id_of
from explain.errors import DataMismatchError, InvalidInputError, InvalidTypeError

__all__ = ["TokenPlan", "DerivedInputsModel", "is_mapping_row", "pad_id_of", "from_mappings"]

_LABELS = ("labels", "label")
_TOKENIZER_ONLY = ("special_tokens_mask", "offset_mapping", "length", "overflow_to_sample_mapping")
_DERIVED = ("attention_mask", "token_type_ids")


def is_mapping_row(item: Any) -> bool:
    """True for a mapping (dict, ``BatchEncoding``, ``datasets`` row) holding ``input_ids``."""
    return isinstance(item, Mapping) and "input_ids" in item


@dataclass(frozen=True)
class TokenPlan:
    """How the model is called on ``input_ids`` alone.

    Attributes
    ----------
    keywords : the inputs rebuilt from the ids, in the data's order (``attention_mask``,
        ``token_type_ids``).
    pad_id : the padding id (``attention_mask`` is ``ids != pad_id``).
    sep_id : the ``[SEP]`` id that ends the first segment (``None`` when unknown).
    """

    keywords: tuple[str, ...]
    pad_id: int
    sep_id: int | None


def _sep_id(tokenizer: Any, model: nn.Module | None) -> int | None:
    sep = getattr(tokenizer, "sep_token_id", None)
    return sep if isinstance(sep, int) and not isinstance(sep, bool) else config_id(
        model, "sep_token_id")


def segments(ids: torch.Tensor, sep_id: int | None, mask: torch.Tensor) -> torch.Tensor:
    """``token_type_ids`` of ``ids`` ``[n, tokens]``: 0 through the first ``[SEP]``, 1 after."""
    if sep_id is None:
        return torch.zeros_like(ids)
    is_sep = (ids == sep_id).long()
    return ((is_sep.cumsum(1) - is_sep).clamp(max=1) * mask.long()).to(ids.dtype)


def derived_inputs(ids: torch.Tensor, plan: TokenPlan) -> dict[str, torch.Tensor]:
    """The model keywords of ``ids`` under ``plan`` (``input_ids`` included)."""
    mask = ids != plan.pad_id
    made = {"attention_mask": mask.long(), "token_type_ids": segments(ids, plan.sep_id, mask)}
    return {"input_ids": ids, **{k: made[k] for k in plan.keywords}}


class DerivedInputsModel(LogitsModel):
    """``forward(input_ids) = logits_of(model(**derived_inputs(input_ids, plan)))``.

    Transparent like :class:`~explain._core.outputs.LogitsModel` (the same module names), so
    every audit stage drives a keyword-only Hugging Face model through one ids tensor.
    """

    def __init__(self, model: nn.Module, plan: TokenPlan) -> None:
        super().__init__(unwrap(model))
        self.__dict__["_plan"] = plan

    @property
    def plan(self) -> TokenPlan:
        """How the keywords are rebuilt."""
        return self.__dict__["_plan"]

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return logits_of(self.wrapped(**derived_inputs(input_ids, self.plan)),
                         owner=f"the model ({type(self.wrapped).__name__})")


def _tensor(v: Any, key: str) -> torch.Tensor:
    try:
        return torch.as_tensor(v).detach().cpu()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InvalidTypeError(f"audit 'data' key {key!r} must be a tensor or array. Got "
                               f"{type(v).__name__} instead.") from exc


def _rows(item: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors of one mapping (a row ``[tokens]`` becomes a batch ``[1, tokens]``)."""
    ids = _tensor(item["input_ids"], "input_ids")
    if ids.is_floating_point() or ids.dim() not in (1, 2):
        raise InvalidInputError(
            "audit 'data' key 'input_ids' must be integer token ids [tokens] or [batch, tokens]. "
            f"Got shape {list(ids.shape)} ({ids.dtype}) instead; tokenize with "
            "return_tensors='pt'.")
    row = ids.dim() == 1
    ids = ids.long().reshape(1, -1) if row else ids.long()
    out = {"input_ids": ids}
    for key, value in item.items():
        if key == "input_ids" or key in _TOKENIZER_ONLY:
            continue
        if key in _LABELS:
            out["labels"] = _tensor(value, key).reshape(-1).long()
        elif key in _DERIVED:
            out[key] = _tensor(value, key).long().reshape(ids.shape)
        elif tuple(getattr(value, "shape", ())) in (tuple(ids.shape), tuple(ids.shape[1:]) if row
                                                     else None):
            raise InvalidInputError(
                f"audit 'data' key {key!r} is a per-token model input, which an audit cannot "
                "rebuild from input_ids (it supports attention_mask and token_type_ids). Drop "
                "the key, or wrap the model so it computes that input itself.")
    return out


def _pad_cat(parts: list[torch.Tensor], width: int, fill: int) -> torch.Tensor:
    return torch.cat([torch.nn.functional.pad(p, (0, width - p.shape[1]), value=fill)
                      for p in parts])


def _check_same(ids: torch.Tensor, given: dict[str, torch.Tensor], plan: TokenPlan) -> None:
    made = derived_inputs(ids, plan)
    for key in plan.keywords:
        bad = torch.nonzero((made[key] != given[key]).any(1)).flatten()
        if bad.numel():
            how = (f"ids != pad id {plan.pad_id}" if key == "attention_mask" else
                   f"0 through the first [SEP] (id {plan.sep_id}), 1 after")
            raise DataMismatchError(
                f"audit 'data' key {key!r} of samples {bad[:5].tolist()} differs from the one "
                f"the audit rebuilds from input_ids ({how}). Pass tokenizer= so the pad and "
                "[SEP] ids are known, or pad with the tokenizer (padding=True).")


def from_mappings(items: Iterable[Mapping[str, Any]], max_samples: int, *, tokenizer: Any = None,
                  model: nn.Module | None = None,
                  ) -> tuple[torch.Tensor, torch.Tensor | None, TokenPlan]:
    """``input_ids`` ``[n, tokens]``, labels ``[n]`` (or ``None``) and the :class:`TokenPlan`
    from mapping batches or rows (at most ``max_samples`` samples, the first ones)."""
    batches: list[dict[str, torch.Tensor]] = []
    n = 0
    for item in items:
        if not is_mapping_row(item):
            raise InvalidTypeError(
                "audit 'data' mixes mapping batches with other items. Every batch must be a "
                f"mapping with 'input_ids'; got {type(item).__name__}.")
        batches.append(_rows(item))
        n += batches[-1]["input_ids"].shape[0]
        if n >= max_samples:
            break
    if not batches:
        raise InvalidInputError("audit 'data' is empty: it yielded no batches. Pass a dataset "
                                "with at least one sample.")
    keywords = tuple(k for k in batches[0] if k in _DERIVED)
    plan = TokenPlan(keywords, pad_id_of(tokenizer, model), _sep_id(tokenizer, model))
    width = max(b["input_ids"].shape[1] for b in batches)
    ids = _pad_cat([b["input_ids"] for b in batches], width, plan.pad_id)[:max_samples]
    given = {}
    for key in keywords:
        if any(key not in b for b in batches):
            raise InvalidInputError(f"audit 'data' key {key!r} is in some batches but not all. "
                                    "Give every batch the same keys.")
        given[key] = _pad_cat([b[key] for b in batches], width, 0)[:max_samples]
    _check_same(ids, given, plan)
    labelled = [b for b in batches if "labels" in b]
    y = torch.cat([b["labels"] for b in batches])[:max_samples] if len(labelled) == len(
        batches) else None
    return ids, y, plan
