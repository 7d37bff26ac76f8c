"""Checks run before any attribution on what the caller passed: the inputs, the target, and
one forward of the model on them.

The input checks (:func:`check_inputs`, :func:`check_target`, :func:`check_forward`,
:func:`accepted_classes`) raise typed errors whose messages name the input, what was expected,
what came and the fix; :func:`find_layer` resolves a model card's layer role. What the model's
structure allows (the structure trace, the deeplift / shap_deep rules and the gradient check)
lives in :mod:`.structure`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from explain._core.outputs import unwrap
from explain._validation import unknown_name
from explain.attribution.batching import expand_args
from explain.attribution.structure import model_state
from explain.card import ModelCard
from explain.errors import DataMismatchError, InvalidInputError, InvalidTypeError

__all__ = ["check_inputs", "check_target", "check_forward", "accepted_classes", "recheck",
           "MODEL_ERRORS", "find_layer"]

def check_inputs(inputs: Any, name: str = "inputs") -> torch.Tensor:
    """Return ``inputs`` if it is a non-empty, finite tensor with a batch dimension.

    Raises
    ------
    InvalidTypeError : not a tensor.
    InvalidInputError : empty batch, no batch dimension, or NaN/inf values (positions named).
    """
    if not isinstance(inputs, torch.Tensor):
        raise InvalidTypeError(
            f"The {name!r} parameter of attribute must be a torch.Tensor of shape "
            f"[batch, *sample_shape]. Got {type(inputs).__name__} instead; wrap it with "
            "torch.as_tensor(...).")
    if inputs.dim() < 1 or inputs.shape[0] == 0:
        raise InvalidInputError(
            f"The {name!r} parameter of attribute must hold at least one sample "
            f"([batch >= 1, ...]). Got an empty batch of shape {list(inputs.shape)} instead.")
    if inputs.is_floating_point() or inputs.is_complex():
        bad = ~torch.isfinite(inputs)
        if bool(bad.any()):
            where = bad.nonzero()[:5].tolist()
            more = int(bad.sum()) - len(where)
            raise InvalidInputError(
                f"The {name!r} parameter of attribute must be finite. Got {int(bad.sum())} "
                f"NaN/inf values, at positions {where}" + (f" and {more} more" if more > 0 else "")
                + "; replace or drop these samples (e.g. torch.nan_to_num).")
    return inputs


def check_target(target: Any, batch: int, num_classes: int, device: torch.device,
                 predict: Callable[[], torch.Tensor]) -> torch.Tensor:
    """Resolve ``target`` to a ``[batch]`` int64 tensor on ``device``.

    ``None`` means the predicted class (``predict()``, the arg-max of the model's logits; only
    then is the model run on the whole batch); an int applies to every sample; a sequence or
    tensor gives one class per sample.
    """
    if target is None:
        return predict().long()
    try:
        t = torch.as_tensor(target, device=device)
    except (TypeError, ValueError, RuntimeError) as err:
        raise InvalidTypeError(
            "The 'target' parameter of attribute must be None, an int or one int per "
            f"sample. Got {type(target).__name__} instead.") from err
    if t.is_floating_point() or t.dtype == torch.bool:
        raise InvalidTypeError(
            "The 'target' parameter of attribute must hold integer class indices. Got dtype "
            f"{t.dtype} instead; use target.long().")
    t = t.long().reshape(-1)
    if t.numel() == 1:
        t = t.expand(batch).clone()
    if t.numel() != batch:
        raise InvalidInputError(
            f"The 'target' parameter of attribute must be one int or {batch} ints (one per "
            f"sample). Got {t.numel()} instead.")
    bad = (t < 0) | (t >= num_classes)
    if bool(bad.any()):
        raise InvalidInputError(
            f"The 'target' parameter of attribute must be in the valid range 0..{num_classes - 1} "
            f"(the model has {num_classes} outputs). Got {t[bad][:5].tolist()} at sample(s) "
            f"{bad.nonzero().flatten()[:5].tolist()} instead.")
    return t


def _expected(card: ModelCard | None) -> str:
    if card is None:
        return "(no model card: the model's own error follows)"
    shape = ", ".join("*" if d is None else str(d) for d in card.input_shape)
    return f"[batch, {shape}] {card.input_dtype} (from the model card of {card.name!r})"


#: what a model raises on inputs it cannot take (wrapped by :func:`check_forward`)
MODEL_ERRORS = (RuntimeError, ValueError, TypeError, IndexError)


def _check_card(inputs: torch.Tensor, card: ModelCard | None, got: str) -> None:
    """Raise when the card's input spec disagrees with ``inputs``."""
    if card is None:
        return
    shape_ok = (len(card.input_shape) == inputs.dim() - 1 and all(
        d is None or d == s for d, s in zip(card.input_shape, inputs.shape[1:])))
    dtype_ok = (inputs.dtype == torch.int64) == (card.input_dtype == "int64")
    if not (shape_ok and dtype_ok):
        fix = ("convert with inputs.float()" if shape_ok else
               "reshape the inputs to the card's sample shape with a leading batch dimension")
        raise DataMismatchError(
            f"The 'inputs' of attribute do not fit the model: expected {_expected(card)}. "
            f"Got {got} instead; {fix}.")


def _shown(inputs: torch.Tensor, batch: int | None) -> str:
    shown = [batch or inputs.shape[0], *inputs.shape[1:]]
    return f"{shown} {str(inputs.dtype).replace('torch.', '')}"


def check_forward(forward: Callable[..., torch.Tensor], inputs: torch.Tensor,
                  args: tuple, card: ModelCard | None,
                  batch: int | None = None) -> torch.Tensor:
    """Run ``forward`` on ``inputs`` without gradients; wrap a failure in a clear error.

    ``batch`` is the caller's batch size, shown in messages when ``inputs`` is a slice of it.

    Raises
    ------
    DataMismatchError : the card's input spec disagrees with the inputs, or the model raised.
    """
    got = _shown(inputs, batch)
    _check_card(inputs, card, got)
    try:
        with torch.no_grad():
            out = forward(inputs, *args)
    except MODEL_ERRORS as err:
        raise DataMismatchError(
            f"The model could not take the 'inputs' of attribute: expected {_expected(card)}. "
            f"Got {got} instead. The model said: {str(err).splitlines()[0]}") from err
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise DataMismatchError(
            "The model must return logits shaped [batch, classes]. Got "
            f"{getattr(out, 'shape', type(out).__name__)} instead; wrap the model so it does.")
    return out


#: per model: forward spec -> (model_state, classes) of the last first-sample check it passed
_ACCEPTED: weakref.WeakKeyDictionary[nn.Module, dict[tuple, tuple[tuple, int]]] = \
    weakref.WeakKeyDictionary()


def _spec(inputs: torch.Tensor, args: tuple) -> tuple | None:
    """What a forward's acceptance depends on besides the model: the sample shape, dtype and
    device, and each extra argument's sample shape and dtype (or its value); None when an
    argument is not hashable (then nothing is remembered)."""
    parts: list[Any] = [tuple(inputs.shape[1:]), inputs.dtype, str(inputs.device)]
    for a in args:
        if isinstance(a, torch.Tensor):
            parts.append((tuple(a.shape[1:]), a.dtype, str(a.device)))
        else:
            try:
                hash(a)
            except TypeError:
                return None
            parts.append((type(a).__name__, a))
    return tuple(parts)


def accepted_classes(model: nn.Module, forward: Callable[..., torch.Tensor],
                     inputs: torch.Tensor, args: tuple, card: ModelCard | None
                     ) -> tuple[int, bool]:
    """:func:`check_forward` on the first sample, remembered per model: ``(classes, cached)``.

    The card check always runs. The one-sample forward (it wraps a model that cannot take
    the inputs in a :class:`DataMismatchError`, and gives the number of classes the target
    is checked against) is remembered for ``model`` (forgotten with it) under the forward
    spec (:func:`_spec`) and :func:`model_state`, so a repeat call on the same model and
    input spec skips it (``cached`` True). Only a passed check is remembered; a caller that
    skipped it re-runs it when the attribution itself raises (:func:`recheck`), so a model
    error still comes as the typed error the check would have raised.
    """
    n = inputs.shape[0]
    _check_card(inputs, card, _shown(inputs, n))
    key, owner, state = _spec(inputs, args), unwrap(model), model_state(model)
    if key is not None:
        hit = _ACCEPTED.get(owner, {}).get(key)
        if hit is not None and hit[0] == state:
            return hit[1], True
    one = slice(0, 1)
    out = check_forward(forward, inputs[one], expand_args(args, one, n), card, batch=n)
    classes = int(out.shape[1])
    if key is not None:
        _ACCEPTED.setdefault(owner, {})[key] = (state, classes)
    return classes, False


def recheck(forward: Callable[..., torch.Tensor], inputs: torch.Tensor, args: tuple,
            card: ModelCard | None, target: torch.Tensor) -> None:
    """The checks :func:`accepted_classes` remembered, run again after a model error: raise
    the :class:`DataMismatchError` of :func:`check_forward`, or the target range error of
    :func:`check_target` against the classes the model returns now; return if both pass
    (the caller then re-raises the model's own error)."""
    n, one = inputs.shape[0], slice(0, 1)
    out = check_forward(forward, inputs[one], expand_args(args, one, n), card, batch=n)
    check_target(target, n, int(out.shape[1]), target.device, lambda: target)


def find_layer(model: nn.Module, card: ModelCard | None, role: str,
               kind: type[nn.Module], pick: str = "first") -> tuple[str, nn.Module] | None:
    """The module for ``role`` from the card's ``layers``, else the first/last ``kind`` found."""
    modules = dict(model.named_modules())
    if card is not None and role in card.layers:
        name = card.layers[role]
        if name not in modules:
            raise unknown_name(f"layer (model card role {role!r})", name, [n for n in modules if n])
        return name, modules[name]
    found = [(n, m) for n, m in modules.items() if isinstance(m, kind)]
    if not found:
        return None
    return found[0] if pick == "first" else found[-1]
