"""``digits``: scikit-learn's 1,797 handwritten digits, 8x8 pixels with intensities 0-16.

Source: :func:`sklearn.datasets.load_digits` (the UCI optdigits test set, shipped with
scikit-learn). Samples are float32 images [1, 8, 8] in [0, 1].
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from explain._validation import check_int
from explain.card import Modality
from zoo.data._split import make_bundle, package_file, stratified_split, subsample
from zoo.data.base import DatasetBundle
from zoo.registry import register_dataset

__all__ = ["load_digits"]


@lru_cache(maxsize=1)
def _raw() -> tuple[np.ndarray, np.ndarray, str]:
    """Pixels [1797, 8, 8] (0-16), labels [1797] and the file's path, read once.

    Reads ``sklearn/datasets/data/digits.csv.gz`` directly (the file ``load_digits`` reads),
    which spares the ~1 s import of scikit-learn.
    """
    path = package_file("sklearn", "datasets/data/digits.csv.gz", install="pip install scikit-learn")
    table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    images = np.ascontiguousarray(table[:, :-1]).reshape(-1, 8, 8)
    labels = table[:, -1].astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels, str(path)


@register_dataset("digits")
def load_digits(*, seed: int = 0, val_size: int = 180, test_size: int = 180,
                train_size: int | None = None) -> DatasetBundle:
    """Load ``digits`` with seeded stratified splits (default 1437/180/180).

    Parameters
    ----------
    seed : seed of the split.
    val_size, test_size : rows in the validation and test splits.
    train_size : keep only this many training rows (stratified subsample); ``None`` keeps all.

    Examples
    --------
    >>> import zoo
    >>> b = zoo.load_dataset("digits")
    >>> len(b.train), tuple(b.train.tensors[0].shape[1:]), float(b.train.tensors[0].max())
    (1437, (1, 8, 8), 1.0)
    """
    seed = check_int(seed, "seed", owner="digits", min=0)
    val_size = check_int(val_size, "val_size", owner="digits", min=0, max=800)
    test_size = check_int(test_size, "test_size", owner="digits", min=0, max=800)
    images, labels, path = _raw()
    train, val, test = stratified_split(labels, val_size, test_size, seed=seed)
    train = train[subsample(labels[train], train_size, seed=seed, owner="digits")]

    def part(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return images[idx][:, None] / np.float32(16.0), labels[idx]

    return make_bundle(
        "digits", {"train": part(train), "val": part(val), "test": part(test)},
        class_names=[str(d) for d in range(10)], modality=Modality.IMAGE, input_shape=(1, 8, 8),
        info={"source": path, "package": "scikit-learn",
              "licence": "UCI optdigits (CC BY 4.0)",
              "options": {"seed": seed, "val_size": val_size, "test_size": test_size,
                          "train_size": train_size}})
