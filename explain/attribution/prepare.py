"""Turn ``(model, inputs, target, baselines, args)`` into a checked :class:`~.base.Job`.

Float inputs are attributed as they are. Integer token ids are attributed at the embedding
layer (the card's ``"embedding"`` role, or the first ``nn.Embedding``): the job differentiates
the embedding output, and :class:`EmbeddingForward` feeds it back into the model through a
forward hook while the model still receives the token ids (so padding masks stay intact).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from explain._core import tensors
from explain._core.outputs import unwrap
from explain.attribution import preflight as pf
from explain.attribution.backoff import is_oom, one_row_oom
from explain.attribution.base import Job
from explain.attribution.batching import expand_args
from explain.attribution.footprint import Footprint, measure
from explain.attribution.structure import Trace, trace_model
from explain.card import Modality, ModelCard
from explain.errors import InvalidInputError

__all__ = ["prepare", "PlainForward", "EmbeddingForward"]

_NO_GRAD_CHUNK = 256
_FOOTPRINT_ROWS = 4    # samples of the measured forward that sizes a new shape's first pass
_KNOWN: weakref.WeakKeyDictionary[nn.Module, dict[tuple, _Known]] = weakref.WeakKeyDictionary()


class PlainForward(nn.Module):
    """``forward(x, *args) = model(x, *args)`` as a module (captum's DeepLift needs one)."""

    #: what ``inspect.signature`` gives any module (``Module.__call__``), stated once: captum
    #: reads the forward's signature on every model call (23 us each; 6 per IG call)
    __signature__ = inspect.signature(lambda *args, **kwargs: None)

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, *args: Any) -> torch.Tensor:
        return self.model(x, *args)


class EmbeddingForward(nn.Module):
    """``forward(emb, ids, *args)``: run ``model(ids, *args)`` with ``layer``'s output replaced
    by ``emb`` (``[batch, tokens, dim]``), so attributions are taken in embedding space."""

    __signature__ = PlainForward.__signature__

    def __init__(self, model: nn.Module, layer: nn.Module) -> None:
        super().__init__()
        self.model = model
        self._layer = [layer]  # a list, so the layer is not registered twice as a submodule

    def forward(self, emb: torch.Tensor, ids: torch.Tensor, *args: Any) -> torch.Tensor:
        handle = self._layer[0].register_forward_hook(lambda _m, _i, _o: emb)
        try:
            return self.model(ids, *args)
        finally:
            handle.remove()


def _embed(layer: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """``layer(ids)`` without gradients, chunked (``[batch, tokens, dim]``)."""
    with torch.no_grad():
        return torch.cat([layer(ids[lo:lo + _NO_GRAD_CHUNK])
                          for lo in range(0, ids.shape[0], _NO_GRAD_CHUNK)])


def _sequence_baseline(x: torch.Tensor) -> torch.Tensor:
    """Zeros that keep each sequence's length: valid frames hold 1e-6, padding stays 0 (for
    ``[batch, time, features]`` sequences and audio frames ``[batch, frames, mels]``).

    An all-zero baseline would be an empty sequence (all padding), where a packed RNN's output
    jumps; integrated gradients' completeness would then fail by construction.
    """
    return tensors.valid_frames(x)[..., None].to(x.dtype).expand_as(x) * 1e-6


def _predict(forward: nn.Module, x: torch.Tensor, args: tuple) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([forward(x[lo:lo + _NO_GRAD_CHUNK],
                                  *expand_args(args, slice(lo, lo + _NO_GRAD_CHUNK), x.shape[0]))
                          for lo in range(0, x.shape[0], _NO_GRAD_CHUNK)])


def _as_args(extra: Any, device: torch.device) -> tuple:
    if extra is None:
        return ()
    extra = tuple(extra) if isinstance(extra, (tuple, list)) else (extra,)
    return tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in extra)


def _baselines(baselines: Any, like: torch.Tensor, name: str = "baselines") -> torch.Tensor:
    if baselines is None:
        return torch.zeros_like(like)
    b = torch.as_tensor(baselines, device=like.device)
    if b.is_floating_point() and not bool(torch.isfinite(b).all()):
        raise InvalidInputError(f"The {name!r} parameter of attribute must be finite. Got "
                                f"{int((~torch.isfinite(b)).sum())} NaN/inf values instead.")
    try:
        return b.to(like.dtype).expand_as(like).clone()
    except RuntimeError as err:
        raise InvalidInputError(
            f"The {name!r} parameter of attribute must broadcast to the inputs' shape "
            f"{list(like.shape)}. Got shape {list(b.shape)} instead.") from err


def _modality(card: ModelCard | None, inputs: torch.Tensor) -> str:
    """:func:`~explain._core.tensors.infer_modality`'s answer; inputs of a rank it does not
    name (a video's ``[batch, C, T, H, W]``) are attributed as they come, as ``"tabular"``: no
    padding rule applies to them."""
    try:
        return tensors.infer_modality(inputs, card).value
    except InvalidInputError:
        return Modality.TABULAR.value


@dataclass
class _Known:
    """What ``prepare`` remembers per model and input spec, each made when first needed: the
    footprint of a forward of 4 samples (it plans a new shape's passes) and the structure
    trace (rule-based methods, cuDNN). A job of one pass needs neither."""

    footprint: Footprint | None = None
    trace: Trace | None = None


def _known(model: nn.Module, forward: nn.Module, x: torch.Tensor, args: tuple) -> _Known:
    """The remembered :class:`_Known` of ``model`` for this input spec (cached per model,
    module set and input spec)."""
    key = (tuple(x.shape[1:]), x.dtype, type(forward).__name__, len(args),
           tuple(id(m) for m in model.modules()))
    owner = unwrap(model)  # entry points wrap the user's model anew on every call
    return _KNOWN.setdefault(owner, {}).setdefault(key, _Known())


def _leaf(x: torch.Tensor) -> torch.Tensor:
    sample = x.detach().clone()
    return sample.requires_grad_(True) if sample.is_floating_point() else sample


def _measured(model: nn.Module, forward: nn.Module, x: torch.Tensor, args: tuple
              ) -> Footprint:
    """The footprint of the first :data:`_FOOTPRINT_ROWS` samples; a forward that runs out of
    memory is retried on half its samples (a pass that did not return is not measured), and
    one that runs out of memory on one sample raises the runner's error for a pass of one row."""
    full = k = min(_FOOTPRINT_ROWS, x.shape[0])
    with measure(model) as measured, torch.enable_grad():
        while True:
            rows = slice(0, k)
            try:
                forward(_leaf(x[rows]), *expand_args(args, rows, x.shape[0]))
                fp = measured()
                return fp if k == full else dataclasses.replace(fp, fitted_rows=k)
            except (torch.cuda.OutOfMemoryError, RuntimeError) as err:
                if not is_oom(err):
                    raise
                if k == 1:
                    raise one_row_oom() from err
                if x.is_cuda:
                    torch.cuda.empty_cache()
                k //= 2


def _lazy(known: _Known, model: nn.Module, forward: nn.Module, x: torch.Tensor, args: tuple
          ) -> tuple[Callable[[], Footprint], Callable[[], Trace]]:
    """(footprint, trace) makers for the job. The footprint is that of the first
    :data:`_FOOTPRINT_ROWS` samples through ``forward`` with gradients, under
    :func:`~.footprint.measure` (tensors that do not grow with the rows, a transposed
    weight, are left out of its largest-tensor and operator sizes; saved for backward, one
    counts a quarter per row)."""
    def footprint() -> Footprint:
        if known.footprint is None:
            known.footprint = _measured(model, forward, x, args)
        return known.footprint

    def trace() -> Trace:
        if known.trace is None:
            one = slice(0, 1)
            known.trace = trace_model(model, forward, _leaf(x[one]),
                                         expand_args(args, one, x.shape[0]))
        return known.trace
    return footprint, trace


def prepare(model: nn.Module, card: ModelCard | None, inputs: torch.Tensor, target: Any,
            baselines: Any, extra_args: Any, notes: list[str], pad_id: int | None = None) -> Job:
    """Check everything and build the job (see the module docstring); ``pad_id`` defaults to
    the model config's ``pad_token_id``, else 0."""
    device = tensors.device_of(model)
    warnings = list(notes)
    if inputs.device != device:
        warnings.append(f"inputs were on {inputs.device}, the model on {device}: moved the "
                        f"inputs to {device}")
        inputs = inputs.to(device)
    args = _as_args(extra_args, device)
    n = inputs.shape[0]
    plain = PlainForward(model)
    checked = args                       # the user's args (token ids lead them below)
    classes, cached = pf.accepted_classes(model, plain, inputs, checked, card)
    # the whole batch runs without gradients only when the predicted class is the target
    tgt = pf.check_target(target, n, classes, device,
                          lambda: _predict(plain, inputs, args).argmax(1))
    emb, pad, base_ids = None, 0, None
    if not inputs.is_floating_point():
        emb = pf.find_layer(model, card, "embedding", nn.Embedding, pick="first")
    if emb is not None:
        ids = inputs.long()
        pad = tensors.pad_id_of(None, model) if pad_id is None else int(pad_id)
        base_ids = _baselines(baselines, ids) if baselines is not None else torch.full_like(ids, pad)
        x, base = _embed(emb[1], ids), _embed(emb[1], base_ids)
        forward: nn.Module = EmbeddingForward(model, emb[1])
        args, token_ids = (ids, *args), ids
    else:
        x, forward, token_ids = inputs, plain, None
        # frames [batch, time, features] (sequences, and audio frames for recurrent models)
        seq = baselines is None and inputs.dim() == 3 and \
            _modality(card, inputs) in ("sequence", "audio")
        base = _sequence_baseline(inputs) if seq else _baselines(baselines, inputs)
    known = _known(model, forward, x, args)
    measurer, tracer = _lazy(known, model, forward, x, args)
    return Job(model=model, card=card, modality=_modality(card, inputs), inputs=inputs, x=x,
               baselines=base, args=args, forward=forward, target=tgt, trace=known.trace,
               token_ids=token_ids, pad_id=pad, baseline_ids=base_ids, warnings=warnings,
               measurer=measurer, tracer=tracer,
               recheck=functools.partial(pf.recheck, plain, inputs, checked, card, tgt)
               if cached else None)
