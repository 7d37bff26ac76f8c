"""The card stage of an audit: what was audited and how to reproduce it."""

from __future__ import annotations

import platform
import sys
from collections.abc import Mapping
from importlib import metadata
from typing import Any

import torch
from torch import nn

from explain._core.jsoncodec import to_json_value
from explain._core.tensors import device_of
from explain.auditing.sections import CardSection, LayerRow
from explain.card import ModelCard

__all__ = ["card_section"]

_MAX_ARCH = 6000


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _layers(model: nn.Module) -> tuple[LayerRow, ...]:
    rows = []
    for name, module in model.named_modules():
        n = sum(p.numel() for p in module.parameters(recurse=False))
        if n:
            rows.append(LayerRow(name or "(root)", type(module).__name__, n))
    return tuple(rows)


def card_section(model: nn.Module, card: ModelCard | None, data: Mapping[str, Any],
                 meta: Mapping[str, Any] | None) -> CardSection:
    """Architecture, parameter count, data, config, versions, seed and device."""
    meta = dict(meta or {})
    params = list(model.parameters())
    config = meta.pop("config", None)
    seed = meta.pop("seed", None)
    if seed is None and isinstance(config, Mapping):
        seed = config.get("seed")
    versions = {"python": platform.python_version(), "torch": torch.__version__,
                **{d: _version(d) for d in ("deepscope", "captum", "shap", "plotly", "numpy")}}
    arch = repr(model)
    return CardSection(
        model_class=type(model).__name__, card=card,
        parameters=sum(p.numel() for p in params),
        trainable_parameters=sum(p.numel() for p in params if p.requires_grad),
        layers=_layers(model),
        architecture=arch if len(arch) <= _MAX_ARCH else arch[:_MAX_ARCH] + "\n...",
        data=to_json_value({**data, **dict(meta.pop("data", None) or {})}),
        config=to_json_value(dict(config) if isinstance(config, Mapping) else config),
        seed=to_json_value(seed), device=str(device_of(model)), versions=versions,
        platform=f"{platform.system()} {platform.machine()}, {sys.implementation.name}",
        extra=to_json_value(meta))
