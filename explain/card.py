"""The model card: what deepscope needs to know about a model to explain and audit it.

Zoo models carry one as ``model.card``; for any other ``nn.Module`` pass a card explicitly or let
deepscope infer what it can (:func:`card_of`).
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

from explain._validation import check_choice, check_int
from explain.errors import InvalidInputError

__all__ = ["Modality", "ModelCard", "card_of"]


class Modality(str, enum.Enum):
    """The kind of input a model takes.

    ``AUDIO`` inputs are spectrograms of sounds: ``[1, mels, frames]`` for convolutional models,
    ``[frames, mels]`` for recurrent ones (the rank of the card's ``input_shape`` tells which).
    """

    IMAGE = "image"          # float [C, H, W]
    SEQUENCE = "sequence"    # float [T, F]; all-zero trailing frames are padding
    TEXT = "text"            # int64 token ids [L]; id 0 is padding
    TABULAR = "tabular"      # float [F]
    AUDIO = "audio"          # float log-mel spectrogram [1, mels, frames] or frames [T, mels]


@dataclass(frozen=True)
class ModelCard:
    """What a model takes and predicts, and which of its layers are worth explaining.

    Parameters
    ----------
    name : registry name (zoo) or class name.
    modality : one of :class:`Modality`.
    input_shape : shape of one sample; ``None`` marks a variable dimension, e.g. ``(None, 12)``.
    input_dtype : ``"float32"`` or ``"int64"`` (token ids).
    num_classes : number of output logits.
    class_names : one name per class.
    layers : role -> dotted module name, e.g. ``{"grad_cam": "features.3", "embedding": "embed"}``.
    pad_value : the value that marks padding (token id 0, or an all-zero frame).
    kwargs : the keyword arguments the model was created with (zoo models).
    """

    name: str
    modality: Modality
    input_shape: tuple[int | None, ...]
    input_dtype: str
    num_classes: int
    class_names: tuple[str, ...]
    layers: dict[str, str] = field(default_factory=dict)
    pad_value: float = 0
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "modality", Modality(check_choice(
            getattr(self.modality, "value", self.modality), "modality",
            [m.value for m in Modality], owner="ModelCard")))
        check_choice(self.input_dtype, "input_dtype", ["float32", "int64"], owner="ModelCard")
        check_int(self.num_classes, "num_classes", owner="ModelCard", min=1)
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        if len(self.class_names) != self.num_classes:
            raise InvalidInputError(
                f"ModelCard {self.name!r}: 'class_names' must have num_classes={self.num_classes} "
                f"entries. Got {len(self.class_names)} instead.")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["modality"] = self.modality.value
        d["input_shape"] = list(self.input_shape)
        d["class_names"] = list(self.class_names)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelCard:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)

    def with_classes(self, class_names: list[str] | tuple[str, ...]) -> ModelCard:
        """A copy with new class names (same count)."""
        d = self.to_dict()
        d["class_names"] = list(class_names)
        return ModelCard.from_dict(d)


def card_of(model: Any) -> ModelCard | None:
    """The card a model carries (``model.card``), or ``None`` for a plain ``nn.Module``."""
    card = getattr(model, "card", None)
    return card if isinstance(card, ModelCard) else None
