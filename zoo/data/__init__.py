"""Datasets that ship inside installable packages, plus bring-your-own loaders."""
from zoo.data.base import DatasetBundle, TensorPairDataset

__all__ = ["DatasetBundle", "TensorPairDataset"]
