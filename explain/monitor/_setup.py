"""What :meth:`TrainingMonitor.start` does before the first step: check the settings and give
the history its columns (one per watched layer and metric, the ``between`` columns) and its
``meta``."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from explain._validation import check_float, check_int
from explain.errors import InvalidTypeError
from explain.monitor._between import BETWEEN_KEYS
from explain.monitor._layers import LayerSpec, static_activation_guess
from explain.monitor.history import LAYER_METRICS, History

__all__ = ["validate", "prepare_history", "run_meta"]

_OWNER = "TrainingMonitor"


def validate(model: Any, every: Any, temporal_samples: Any, max_every: Any,
             max_snapshot_bytes: Any, budget: Any, history: Any, scaler: Any) -> None:
    """Raise a typed error naming the first of :class:`TrainingMonitor`'s settings that is
    invalid (what was expected, what came)."""
    if not isinstance(model, nn.Module):
        raise InvalidTypeError(
            f"The 'model' parameter of {_OWNER} must be a torch.nn.Module. "
            f"Got {type(model).__name__} instead.")
    if every is not None:
        check_int(every, "every", owner=_OWNER, min=1)
    check_int(temporal_samples, "temporal_samples", owner=_OWNER, min=1)
    check_int(max_every, "max_every", owner=_OWNER, min=1)
    if max_snapshot_bytes is not None:
        check_int(max_snapshot_bytes, "max_snapshot_bytes", owner=_OWNER, min=0)
    check_float(budget, "budget", owner=_OWNER, min=0, min_inclusive=False, max=1)
    if not isinstance(history, History):
        raise InvalidTypeError(
            f"The 'history' parameter of {_OWNER} must be an explain.monitor.History or "
            f"None. Got {type(history).__name__} instead.")
    if scaler is not None and not hasattr(scaler, "get_scale"):
        raise InvalidTypeError(
            f"The 'scaler' parameter of {_OWNER} must be a torch.amp.GradScaler or None. "
            f"Got {type(scaler).__name__} instead.")


def prepare_history(history: History, model: nn.Module, layers: list[LayerSpec],
                    meta: dict[str, Any]) -> None:
    """Give ``history`` a column per layer and metric and the ``between`` columns (padded with
    None for the records of an earlier history that lacked them), each layer's info (the
    activation guessed from the module order until one is observed), and update its meta."""
    h, n = history, len(history.steps)
    guess = static_activation_guess(model, layers)
    for spec in layers:
        h.layers.setdefault(spec.name, {})
        for metric in LAYER_METRICS:
            h.layers[spec.name].setdefault(metric, [None] * n)
        h.layer_info.setdefault(spec.name, {
            "type": type(spec.module).__name__, "activation": guess.get(spec.name),
            "num_params": spec.num_params, "index": spec.index})
    for key in BETWEEN_KEYS:  # a history recorded before these were tracked: None there
        h.between.setdefault(key, [None] * n)
    h.meta.update(meta)


def run_meta(model: nn.Module, params: list[torch.Tensor], *, every: int | None, budget: float,
             scaler: Any, sequence: bool, include_norm: bool, compiled: int,
             snapshot_limited: bool, temporal_samples: int) -> dict[str, Any]:
    """What ``history.meta`` says about the run's model and the monitor's settings."""
    first = params[0] if params else None
    return {
        "model": type(model).__name__,
        "num_params": sum(p.numel() for p in params),
        "num_trainable": sum(p.numel() for p in params if p.requires_grad),
        "every": every if every is not None else "auto",
        "budget": budget, "device": str(first.device) if first is not None else "cpu",
        "dtype": str(first.dtype).replace("torch.", "") if first is not None else None,
        "amp": bool(scaler is not None and scaler.is_enabled()),
        "sequence": sequence, "include_norm": include_norm,
        "compiled_modules": compiled, "snapshot_limited": snapshot_limited,
        "temporal_samples": temporal_samples}
