"""Turning what users pass to :func:`explain.audit` into tensors and a sample of them.

Model calls (eval copy, batched predict, modality, token decoding) are the shared helpers of
:mod:`explain._core.tensors`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from explain.errors import DataMismatchError, InvalidInputError, InvalidTypeError

__all__ = ["collect", "pick_samples", "describe_inputs"]


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


def collect(data: Any, max_samples: int = 10_000) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Inputs ``[n, *sample]`` and labels ``[n]`` (or ``None``) from a tuple, Dataset or DataLoader.

    At most ``max_samples`` samples are read (the first ones, in the data's order).
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
            "audit 'data' must be a torch Dataset, a DataLoader, an (inputs, labels) tuple or an "
            f"inputs tensor. Got {type(data).__name__} instead.")
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
