"""Turning what users pass to :func:`explain.audit` into tensors and a sample of them.

Accepted data: an ``(inputs, labels)`` tuple, an inputs tensor, a torch Dataset or DataLoader of
``(input, label)`` pairs, and Hugging Face-style data: a DataLoader or Dataset yielding mapping
batches or rows with ``input_ids`` (``attention_mask``, ``token_type_ids``) and ``labels``, or a
``datasets.Dataset`` in torch format (see :mod:`explain.auditing._hf_data`).

Model calls (eval copy, batched predict, modality, token decoding) are the shared helpers of
:mod:`explain._core.tensors`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from explain.auditing._hf_data import DerivedInputsModel, TokenPlan, from_mappings, is_mapping_row
from explain.errors import DataMismatchError, InvalidInputError, InvalidTypeError

__all__ = ["AuditData", "gather", "collect", "pick_samples", "describe_inputs", "words_of"]


@dataclass(frozen=True)
class AuditData:
    """The audited data: ``inputs`` ``[n, *sample]``, ``labels`` ``[n]`` (or ``None``) and, for
    mapping data, the :class:`~explain.auditing._hf_data.TokenPlan` that calls the model on
    ``inputs`` (its ``input_ids``) alone."""

    inputs: torch.Tensor
    labels: torch.Tensor | None
    plan: TokenPlan | None = None

    def model_for(self, model: nn.Module) -> nn.Module:
        """``model`` as the audit calls it: on mapping data, through
        :class:`~explain.auditing._hf_data.DerivedInputsModel`."""
        return model if self.plan is None else DerivedInputsModel(model, self.plan)


def _as_tensor(v: Any, what: str) -> torch.Tensor:
    if isinstance(v, torch.Tensor):
        return v.detach().cpu()
    try:
        return torch.as_tensor(v).cpu()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InvalidTypeError(f"audit 'data' {what} must be a tensor or array. Got "
                               f"{type(v).__name__} instead.") from exc


def _from_batches(batches: Any, max_samples: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    xs, ys, n = [], [], 0
    for batch in batches:
        if isinstance(batch, (tuple, list)) and len(batch) >= 2:
            xs.append(_as_tensor(batch[0], "inputs"))
            ys.append(_as_tensor(batch[1], "labels"))
        else:
            xs.append(_as_tensor(batch, "inputs"))
        n += xs[-1].shape[0]
        if n >= max_samples:
            break
    if not xs:
        raise InvalidInputError("audit 'data' is empty: it yielded no batches. Pass a dataset "
                                "with at least one sample.")
    x = torch.cat(xs)[:max_samples]
    y = torch.cat(ys)[:max_samples] if len(ys) == len(xs) else None
    return x, y


def _indexable(data: Any) -> bool:
    """A map-style dataset that is not a torch Dataset (e.g. a ``datasets.Dataset``)."""
    return (not isinstance(data, (torch.Tensor, tuple, list, dict, str, bytes))
            and hasattr(data, "__getitem__") and hasattr(data, "__len__"))


def _items(data: Any, max_samples: int) -> Iterator[Any]:
    """The rows or batches of ``data``, without collating mapping rows (their lengths differ)."""
    if isinstance(data, (DataLoader, list, tuple)):
        yield from data
    else:
        for i in range(min(len(data), max_samples)):
            yield data[i]


def _first(data: Any) -> Any:
    """The first batch or row of ``data`` (``None`` when it has none or cannot be indexed)."""
    try:
        if isinstance(data, DataLoader):
            return next(iter(data), None)
        return data[0] if len(data) else None
    except (TypeError, NotImplementedError, IndexError, KeyError):
        return None


def gather(data: Any, max_samples: int = 10_000, *, tokenizer: Any = None,
           model: nn.Module | None = None) -> AuditData:
    """:func:`collect`, plus the plan that calls the model on mapping data: one mapping batch,
    a list of them, or a DataLoader / Dataset yielding mapping batches or rows.

    ``tokenizer`` and ``model`` give the pad and ``[SEP]`` ids of mapping data
    (``pad_token_id``, ``sep_token_id``; else ``model.config``'s; else pad 0).
    """
    if is_mapping_row(data):   # one batch: tokenizer(texts, ...) plus 'labels'
        data = [data]
    listed = isinstance(data, (list, tuple)) and bool(data) and is_mapping_row(data[0])
    mapped = listed or (isinstance(data, (DataLoader, Dataset)) or _indexable(data)) \
        and not isinstance(getattr(data, "tensors", None), (tuple, list)) \
        and is_mapping_row(_first(data))
    if mapped:
        ids, y, plan = from_mappings(_items(data, max_samples), max_samples,
                                     tokenizer=tokenizer, model=model)
        x, labels = _check(ids, y, max_samples)
        return AuditData(x, labels, plan)
    x, labels = collect(data, max_samples)
    return AuditData(x, labels)


def collect(data: Any, max_samples: int = 10_000) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Inputs ``[n, *sample]`` and labels ``[n]`` (or ``None``) from a tuple, Dataset or DataLoader.

    At most ``max_samples`` samples are read (the first ones, in the data's order). Mapping
    data is read by :func:`gather`, which also says how to call the model on it.
    """
    if isinstance(data, torch.Tensor):
        x, y = data.detach().cpu(), None
    elif isinstance(data, (tuple, list)) and len(data) == 2 and not isinstance(data[0], tuple):
        x = _as_tensor(data[0], "inputs")
        y = None if data[1] is None else _as_tensor(data[1], "labels")
    elif isinstance(data, DataLoader):
        x, y = _from_batches(data, max_samples)
    elif isinstance(data, Dataset):
        tensors = getattr(data, "tensors", None)
        if isinstance(tensors, (tuple, list)) and len(tensors) >= 2:
            x, y = tensors[0].detach().cpu(), tensors[1].detach().cpu()
        else:
            x, y = _from_batches(DataLoader(data, batch_size=256), max_samples)
    else:
        raise InvalidTypeError(
            "audit 'data' must be a torch Dataset, a DataLoader, an (inputs, labels) tuple, an "
            "inputs tensor, or mapping batches with 'input_ids' and 'labels'. Got "
            f"{type(data).__name__} instead.")
    return _check(x, y, max_samples)


def _check(x: torch.Tensor, y: torch.Tensor | None,
           max_samples: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    x = x[:max_samples]
    y = None if y is None else y[:max_samples].long().flatten()
    if x.ndim < 2 or x.shape[0] == 0:
        raise InvalidInputError(f"audit 'data' inputs must be a batch [n, ...] with n >= 1. Got "
                                f"shape {list(x.shape)} instead.")
    if y is not None and y.shape[0] != x.shape[0]:
        raise DataMismatchError(f"audit 'data' has {x.shape[0]} inputs but {y.shape[0]} labels. "
                                "Pass one label per input.")
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        bad = torch.nonzero(~torch.isfinite(x.flatten(1)).all(1)).flatten()[:5].tolist()
        raise InvalidInputError(f"audit 'data' inputs contain NaN or inf (samples {bad}...). "
                                "Clean or drop those samples first.")
    return x, y


def pick_samples(labels: torch.Tensor, n: int, seed: int = 0) -> list[int]:
    """``n`` sample indices spread over classes (round robin over classes, seeded order)."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(labels.shape[0], generator=g)
    by_class: dict[int, list[int]] = {}
    for i in order.tolist():
        by_class.setdefault(int(labels[i]), []).append(i)
    picked: list[int] = []
    queues = [by_class[c] for c in sorted(by_class)]
    depth = 0
    while len(picked) < n and any(depth < len(q) for q in queues):
        for q in queues:
            if depth < len(q) and len(picked) < n:
                picked.append(q[depth])
        depth += 1
    return picked


def describe_inputs(x: torch.Tensor) -> dict[str, Any]:
    """Shape and dtype of the audited inputs (for the model card's data section)."""
    return {"n": int(x.shape[0]), "sample_shape": list(x.shape[1:]), "dtype": str(x.dtype)}


def words_of(ids: torch.Tensor, tokenizer: Any) -> list[str]:
    """The words of one text sample through ``tokenizer`` (``convert_ids_to_tokens``): word
    pieces merged (``play ##ing`` -> ``playing``), padding and special tokens dropped.

    Examples
    --------
    >>> class Tok:
    ...     pad_token_id, all_special_tokens = 0, ["[PAD]", "[CLS]", "[SEP]"]
    ...     def convert_ids_to_tokens(self, ids):
    ...         return [["[PAD]", "[CLS]", "[SEP]", "play", "##ing", "well"][i] for i in ids]
    >>> words_of(torch.tensor([1, 3, 4, 5, 2, 0, 0]), Tok())
    ['playing', 'well']
    """
    pad = getattr(tokenizer, "pad_token_id", None)
    kept = [int(i) for i in ids.reshape(-1).tolist() if int(i) != (0 if pad is None else pad)]
    tokens = [str(t) for t in tokenizer.convert_ids_to_tokens(kept)]
    special = set(getattr(tokenizer, "all_special_tokens", None) or ())
    try:
        from explain.attribution.hf_inputs import merge_word_pieces
    except ImportError:  # attribution not installed: the pieces as they are
        return [t for t in tokens if t not in special]
    merged = merge_word_pieces(tokens, [0.0] * len(tokens), special=sorted(special))
    return [w for w in merged.words if w not in special]
