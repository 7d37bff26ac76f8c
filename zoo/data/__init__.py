"""Datasets that ship inside installable packages, plus bring-your-own loaders."""
from zoo.data.base import DatasetBundle, TensorPairDataset
from zoo.data.custom import from_arrays, from_image_folder
from zoo.data.text import Vocabulary, tokenize

__all__ = ["DatasetBundle", "TensorPairDataset", "Vocabulary", "tokenize", "from_arrays",
           "from_image_folder"]
