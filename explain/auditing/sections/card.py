"""The model-card section: architecture, parameters, data, configuration, versions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from explain.auditing.sections._base import Section
from explain.card import ModelCard

__all__ = ["CardSection", "LayerRow"]


@dataclass(frozen=True)
class LayerRow:
    """A module that holds parameters of its own."""

    name: str
    type: str
    params: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "params": self.params}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LayerRow:
        return cls(str(d["name"]), str(d["type"]), int(d["params"]))


@dataclass(frozen=True, eq=False, kw_only=True)
class CardSection(Section):
    """What was audited and how to reproduce it.

    Attributes
    ----------
    model_class : the model's class name.  card : its :class:`explain.ModelCard`, if any.
    parameters, trainable_parameters : parameter counts.
    layers : a :class:`LayerRow` per module with parameters.
    architecture : ``repr(model)`` (cut at 6000 characters).
    data, config, extra : the facts passed as ``meta`` (free-form JSON values from the user).
    seed, device, versions, platform : what the run needs to be reproduced.
    """

    name = "card"
    title = "Model card"
    model_class: str = ""
    card: ModelCard | None = None
    parameters: int = 0
    trainable_parameters: int = 0
    layers: tuple[LayerRow, ...] = ()
    architecture: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    config: Any = None
    seed: Any = None
    device: str = "cpu"
    versions: dict[str, str | None] = field(default_factory=dict)
    platform: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def _read(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(super()._read(d))
        card = d.get("card")
        out["card"] = None if not card else ModelCard.from_dict(dict(card))
        out["layers"] = tuple(LayerRow.from_dict(r) for r in d.get("layers") or ())
        for key in ("data", "versions", "extra"):
            out[key] = dict(d.get(key) or {})
        return out
