"""The dataset bundle every loader returns, and the in-memory dataset the zoo uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import Dataset

from explain.card import Modality


class TensorPairDataset(Dataset):
    """``(x, y)`` pairs held as two tensors; the trainer batches them without a DataLoader.

    ``x``: [N, *sample_shape] (float32, or int64 token ids); ``y``: [N] int64 labels.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.tensors = (x, y)

    def __len__(self) -> int:
        return int(self.tensors[0].shape[0])

    def __getitem__(self, i):
        return self.tensors[0][i], self.tensors[1][i]


@dataclass
class DatasetBundle:
    """Train/val/test splits plus what a model needs to know about them.

    Attributes
    ----------
    name : registry name.
    train, val, test : torch Datasets of ``(x, y)``.
    num_classes, class_names : the label space.
    modality : :class:`explain.Modality`.
    input_shape : shape of one sample (``None`` for a variable dimension).
    vocab : the :class:`zoo.data.text.Vocabulary` of text data sets, else ``None``.
    tokenizer : the Hugging Face tokenizer the text was encoded with, else ``None`` (a run
        trained on it saves the tokenizer's files).
    info : source, licence note, and the loader's options (JSON values only).
    """

    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    num_classes: int
    class_names: tuple[str, ...]
    modality: Modality
    input_shape: tuple[int | None, ...]
    vocab: Any = None
    tokenizer: Any = None
    info: dict[str, Any] = field(default_factory=dict)

    def model_kwargs(self) -> dict[str, Any]:
        """The keyword arguments a zoo model factory needs to fit this data."""
        kw: dict[str, Any] = {"input_shape": tuple(self.input_shape),
                              "num_classes": self.num_classes,
                              "class_names": list(self.class_names)}
        if self.vocab is not None:
            kw["vocab_size"] = len(self.vocab)
        return kw

    def sizes(self) -> dict[str, int]:
        """``{"train": n, "val": n, "test": n}``: the number of samples in each split."""
        return {"train": len(self.train), "val": len(self.val),  # type: ignore[arg-type]
                "test": len(self.test)}  # type: ignore[arg-type]
