"""``fashion-mnist``: Zalando's 70,000 clothing images, read from the IDX files on disk.

Source: the four gzipped IDX files (``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``) in ``root``, by default
``/usr/share/datasets/fashion-mnist/`` (Debian package ``dataset-fashion-mnist``). The official
test split (10,000) is kept; the validation split is carved from the 60,000 training images.
Samples are float32 images [1, 28, 28] in [0, 1].
"""

from __future__ import annotations

import gzip
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from explain._validation import check_int
from explain.card import Modality
from explain.errors import DataNotFoundError, InvalidInputError, InvalidTypeError
from zoo.data._split import make_bundle, stratified_split, subsample
from zoo.data.base import DatasetBundle
from zoo.registry import register_dataset

__all__ = ["CLASS_NAMES", "DEFAULT_ROOT", "load_fashion_mnist", "read_idx"]

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist/"
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_FIX = ("Install it with `apt-get install dataset-fashion-mnist`, or pass root= a folder holding "
        "the four IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz).")


def read_idx(path: str | Path, *, ndim: int) -> np.ndarray:
    """Parse one IDX file of unsigned bytes (gzipped when its name ends in ``.gz``).

    The header is two zero bytes, the type code ``0x08`` (ubyte), the number of dimensions and
    one big-endian int32 size per dimension; the data follow. Everything is checked.

    Parameters
    ----------
    path : the file.
    ndim : the number of dimensions expected (3 for images, 1 for labels).

    Returns
    -------
    numpy.ndarray of uint8 with the shape the header declares.

    Raises
    ------
    InvalidInputError : the file is not gzip, has a wrong magic number or the wrong size.
    """
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise InvalidInputError(
            f"The IDX file {str(path)!r} is corrupt: it could not be decompressed ({exc}). "
            f"Replace it with a fresh copy. {_FIX}") from None
    if len(raw) < 4 + 4 * ndim:
        raise InvalidInputError(
            f"The IDX file {str(path)!r} is corrupt: {len(raw)} bytes is shorter than its "
            f"header. Replace it with a fresh copy. {_FIX}")
    magic = raw[:4]
    want = bytes([0, 0, 0x08, ndim])
    if magic != want:
        raise InvalidInputError(
            f"The IDX file {str(path)!r} is corrupt: its magic number must be {want.hex()} "
            f"(unsigned bytes, {ndim} dimensions). Got {magic.hex()} instead. "
            f"Replace it with a fresh copy. {_FIX}")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    expected = 4 + 4 * ndim + int(np.prod(shape))
    if len(raw) != expected:
        raise InvalidInputError(
            f"The IDX file {str(path)!r} is corrupt: its header declares shape {shape}, so it "
            f"must hold {expected} bytes. Got {len(raw)} instead. Replace it with a fresh copy.")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _find(root: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    raise DataNotFoundError(
        f"Fashion-MNIST was not found: {str(root / (stem + '.gz'))!r} does not exist. {_FIX}")


@lru_cache(maxsize=2)
def _raw(root: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """uint8 images [N, 28, 28] and int64 labels [N] per official split, parsed once per root."""
    folder = Path(root)
    if not folder.is_dir():
        raise DataNotFoundError(f"Fashion-MNIST was not found: the folder {root!r} does not "
                                f"exist. {_FIX}")
    out = {}
    for split, (img_stem, lab_stem) in _FILES.items():
        img_path, lab_path = _find(folder, img_stem), _find(folder, lab_stem)
        images, labels = read_idx(img_path, ndim=3), read_idx(lab_path, ndim=1)
        if images.shape[1:] != (28, 28):
            raise InvalidInputError(
                f"The IDX file {str(img_path)!r} must hold 28x28 images. Got "
                f"{images.shape[1]}x{images.shape[2]} instead. Replace it with a fresh copy.")
        if len(images) != len(labels) or labels.size and labels.max() > 9:
            raise InvalidInputError(
                f"The IDX file {str(lab_path)!r} must hold {len(images)} labels in 0..9 (one "
                f"per image of {img_path.name}). Got {len(labels)} labels, max "
                f"{int(labels.max()) if labels.size else None}, instead. Replace it.")
        out[split] = (images, labels.astype(np.int64))
    return out


@register_dataset("fashion-mnist")
def load_fashion_mnist(*, seed: int = 0, root: str | Path = DEFAULT_ROOT, val_size: int = 5000,
                       limit: int | None = None,
                       train_size: int | None = None) -> DatasetBundle:
    """Load ``fashion-mnist``: official test split, validation carved (stratified) from train.

    Parameters
    ----------
    seed : seed of the validation split and of the ``limit`` subsample.
    root : folder of the four IDX files.
    val_size : images carved from the 60,000 training images for validation.
    limit, train_size : keep only this many training images (stratified), for speed;
        ``None`` keeps all. The two names are one option (``train_size`` as in the other loaders).

    Raises
    ------
    DataNotFoundError : ``root`` or one of its files is missing (says how to install it).
    InvalidInputError : a file is corrupt (names the file).

    Examples
    --------
    >>> import zoo
    >>> b = zoo.load_dataset("fashion-mnist", limit=1000)  # doctest: +SKIP
    >>> len(b.train), len(b.val), len(b.test), b.class_names[0]  # doctest: +SKIP
    (1000, 5000, 10000, 'T-shirt/top')
    """
    seed = check_int(seed, "seed", owner="fashion-mnist", min=0)
    if not isinstance(root, (str, Path)):
        raise InvalidTypeError(f"The 'root' parameter of fashion-mnist must be a folder path "
                               f"(str or Path). Got {type(root).__name__} instead.")
    raw = _raw(str(Path(root).expanduser().resolve()))
    train_x, train_y = raw["train"]
    test_x, test_y = raw["test"]
    val_size = check_int(val_size, "val_size", owner="fashion-mnist", min=0,
                         max=len(train_y) - 1)
    train, val, _ = stratified_split(train_y, val_size, 0, seed=seed)
    if limit is not None and train_size is not None and limit != train_size:
        raise InvalidInputError(
            f"The 'limit' and 'train_size' parameters of fashion-mnist are the same option. Got "
            f"limit={limit!r} and train_size={train_size!r}; pass only one.")
    limit = limit if limit is not None else train_size
    train = train[subsample(train_y[train], limit, seed=seed, owner="fashion-mnist",
                            name="limit")]

    def part(x: np.ndarray, y: np.ndarray, idx: np.ndarray | None = None):
        if idx is not None:
            x, y = x[idx], y[idx]
        return x[:, None].astype(np.float32) / np.float32(255.0), y

    return make_bundle(
        "fashion-mnist",
        {"train": part(train_x, train_y, train), "val": part(train_x, train_y, val),
         "test": part(test_x, test_y)},
        class_names=CLASS_NAMES, modality=Modality.IMAGE, input_shape=(1, 28, 28),
        info={"source": str(root), "package": "dataset-fashion-mnist (Debian)",
              "licence": "MIT (Zalando Research)",
              "options": {"seed": seed, "root": str(root), "val_size": val_size,
                          "limit": limit}})
