"""deepscope's model zoo: CNN, RNN, Transformer and MLP classifiers trained on real data that ships
inside installable packages, plus presets with known pathologies (the diagnostics' ground truth).
"""

from __future__ import annotations

from typing import Any

from explain.card import Modality, ModelCard
from zoo.data.base import DatasetBundle, TensorPairDataset
from zoo.registry import (
    create_model,
    list_datasets,
    list_models,
    load_dataset,
    register_dataset,
    register_model,
)

__all__ = [
    "Modality",
    "ModelCard",
    "DatasetBundle",
    "TensorPairDataset",
    "create_model",
    "list_models",
    "load_dataset",
    "list_datasets",
    "register_model",
    "register_dataset",
    "from_arrays",
    "from_image_folder",
    "TrainConfig",
    "Run",
    "train",
    "load_run",
    "list_presets",
    "get_preset",
    "learning_curve",
]

_LAZY = {
    "TrainConfig": "zoo.config",
    "Run": "zoo.run",
    "train": "zoo.trainer",
    "load_run": "zoo.checkpoint",
    "list_presets": "zoo.presets",
    "get_preset": "zoo.presets",
    "from_arrays": "zoo.data.custom",
    "from_image_folder": "zoo.data.custom",
    "learning_curve": "zoo.learning",
}


def __getattr__(name: str) -> Any:  # lazy: keep `import zoo` light
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
