"""The :class:`Run`: a trained model with everything needed to explain and audit it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from explain.card import ModelCard
from zoo.config import TrainConfig

__all__ = ["Run"]


@dataclass
class Run:
    """A trained model and its record, as written to / read from a run folder.

    Attributes
    ----------
    model : the trained ``nn.Module`` (in eval mode after :func:`zoo.load_run`).
    card : its :class:`explain.ModelCard`.
    config : the :class:`zoo.TrainConfig` it was trained with.
    history : the :class:`explain.History` recorded while training (``None`` if not recorded).
    metrics : test metrics: ``test_accuracy``, ``test_loss``, ``per_class``, ``best_epoch``, ...
    model_name, model_kwargs : how to rebuild the architecture (``zoo.create_model``).
    dataset_name, dataset_options : how to reload the data (``zoo.load_dataset``), or ``None``
        for data the user passed in.
    preset : the preset name, if trained from one.
    path : the run folder, or ``None`` if not saved.
    vocab : the tokenizer vocabulary for text models, else ``None``.
    epoch : epochs completed.
    versions : package versions at training time.
    """

    model: nn.Module
    card: ModelCard
    config: TrainConfig
    history: Any
    metrics: dict[str, Any]
    model_name: str
    model_kwargs: dict[str, Any]
    dataset_name: str | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    preset: str | None = None
    path: Path | None = None
    vocab: Any = None
    epoch: int = 0
    versions: dict[str, str] = field(default_factory=dict)
    _dataset: Any = field(default=None, repr=False)

    @property
    def dataset(self):
        """The :class:`zoo.DatasetBundle` the model was trained on (loaded on first access).

        ``None`` for data passed in by the user (deepscope cannot reload it).
        """
        if self._dataset is None and self.dataset_name is not None:
            from zoo.registry import load_dataset
            self._dataset = load_dataset(self.dataset_name, **self.dataset_options)
        return self._dataset

    @property
    def test_accuracy(self) -> float | None:
        return self.metrics.get("test_accuracy")

    def __repr__(self) -> str:
        acc = self.metrics.get("test_accuracy")
        acc_s = f"{acc:.4f}" if isinstance(acc, float) else "n/a"
        return (f"Run(model={self.model_name!r}, dataset={self.dataset_name!r}, "
                f"epochs={self.epoch}, test_accuracy={acc_s}, path={str(self.path)!r})")
