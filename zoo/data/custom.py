"""Bring your own data: arrays or a folder of images become a :class:`DatasetBundle`.

Both loaders validate what they are given and split it with the same seeded stratified split the
zoo's data sets use, so ``zoo.train(model, bundle)`` and every diagnostic work on the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from explain._validation import check_choice, check_int
from explain.card import Modality
from explain.errors import DataNotFoundError, InvalidInputError, InvalidTypeError
from zoo.data._split import make_bundle, split_sizes, stratified_split
from zoo.data.base import DatasetBundle

__all__ = ["IMAGE_EXTENSIONS", "from_arrays", "from_image_folder"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_MODALITIES = ["image", "sequence", "text", "tabular"]  # audio bundles come from spoken-digits


def _as_numpy(a: Any, name: str) -> np.ndarray:
    if hasattr(a, "detach") and hasattr(a, "cpu"):  # a torch tensor
        return a.detach().cpu().numpy()
    if isinstance(a, (np.ndarray, list, tuple)):
        return np.asarray(a)
    raise InvalidTypeError(f"The {name!r} parameter of from_arrays must be a numpy array or a "
                           f"torch tensor. Got {type(a).__name__} instead.")


def _positions(mask: np.ndarray, limit: int = 5) -> str:
    where = [tuple(int(i) for i in p) if len(p) > 1 else int(p[0])
             for p in np.argwhere(mask)[:limit]]
    more = int(mask.sum()) - len(where)
    return ", ".join(map(str, where)) + (f" (and {more} more)" if more > 0 else "")


def _infer_modality(x: np.ndarray) -> Modality:
    integer = np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_
    if x.ndim == 2:
        return Modality.TEXT if integer and x.dtype != np.bool_ else Modality.TABULAR
    if x.ndim == 3:
        return Modality.SEQUENCE
    if x.ndim == 4:
        return Modality.IMAGE
    raise InvalidInputError(
        f"The 'x' parameter of from_arrays must have 2 (tabular [N, F] or text [N, L]), 3 "
        f"(sequence [N, T, F]) or 4 (image [N, C, H, W]) dimensions. Got shape {x.shape} "
        f"instead; reshape it or pass modality=.")


def _check_labels(y: np.ndarray, n: int, class_names: Sequence[str] | None) -> np.ndarray:
    if y.ndim != 1 or len(y) != n:
        raise InvalidInputError(
            f"The 'y' parameter of from_arrays must hold one label per sample of x: shape "
            f"({n},). Got shape {y.shape} instead.")
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_):
        raise InvalidTypeError(f"The 'y' parameter of from_arrays must hold integer class ids "
                               f"0..K-1. Got dtype {y.dtype} instead; map names to ids first.")
    yf = y.astype(np.float64)
    bad = ~np.isfinite(yf) | (yf != np.round(yf)) | (yf < 0)
    if class_names is not None:
        bad |= yf >= len(class_names)
    if bad.any():
        k = f"0..{len(class_names) - 1}" if class_names is not None else "0..K-1"
        raise InvalidInputError(
            f"The 'y' parameter of from_arrays must hold integer class ids {k}. Got "
            f"{_values(y[bad])} at positions {_positions(bad)} instead.")
    return yf.astype(np.int64)


def _values(v: np.ndarray, limit: int = 5) -> str:
    return ", ".join(repr(x.item()) for x in v[:limit]) + (" ..." if len(v) > limit else "")


def _check_x(x: np.ndarray, modality: Modality) -> np.ndarray:
    """Validate ``x`` for ``modality`` and convert it (float32, or int64 token ids)."""
    if modality is Modality.TEXT:
        if not np.issubdtype(x.dtype, np.integer) or x.ndim != 2:
            raise InvalidInputError(f"Text x must be integer token ids [N, L] (0 = padding). "
                                    f"Got shape {x.shape}, dtype {x.dtype} instead.")
        if (x < 0).any():
            raise InvalidInputError(f"Text x must hold token ids >= 0 (0 = padding). Got "
                                    f"negative ids at positions {_positions(x < 0)}.")
        return x.astype(np.int64)
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise InvalidTypeError(f"The 'x' parameter of from_arrays must be numeric. Got dtype "
                               f"{x.dtype} instead.")
    want = {Modality.TABULAR: 2, Modality.SEQUENCE: 3, Modality.IMAGE: 4}[modality]
    if modality is Modality.IMAGE and x.ndim == 3:
        x = x[:, None]  # [N, H, W] -> [N, 1, H, W]
    if x.ndim != want:
        raise InvalidInputError(f"{modality.value} x must have {want} dimensions. Got shape "
                                f"{x.shape} instead.")
    bad = ~np.isfinite(x.astype(np.float64, copy=False))
    if bad.any():
        raise InvalidInputError(f"The 'x' parameter of from_arrays must be finite. Got NaN or "
                                f"inf at positions {_positions(bad)}; drop or impute them.")
    if modality is Modality.IMAGE and x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)  # images in [0, 1]
    return x.astype(np.float32)


def from_arrays(x: Any, y: Any, *, modality: str | Modality | None = None,
                class_names: Sequence[str] | None = None, val_fraction: float = 0.1,
                test_fraction: float = 0.1, seed: int = 0, name: str = "arrays") -> DatasetBundle:
    """Turn arrays (numpy or torch) into a :class:`DatasetBundle` with seeded stratified splits.

    Parameters
    ----------
    x : samples [N, ...]. Modality, when not given, follows the shape: integer [N, L] is text
        (token ids, 0 = padding), float [N, F] tabular, [N, T, F] sequence, [N, C, H, W] image.
        uint8 images are scaled to [0, 1]; [N, H, W] with ``modality="image"`` gets a channel.
    y : integer labels [N] in 0..K-1.
    modality : ``"image"``, ``"sequence"``, ``"text"`` or ``"tabular"``; inferred if ``None``.
    class_names : K names; default ``"0"`` .. ``"K-1"`` with K = max label + 1.
    val_fraction, test_fraction : fractions held out (each may be 0).
    seed : seed of the split.
    name : the bundle's name.

    Examples
    --------
    >>> import numpy as np
    >>> b = from_arrays(np.random.default_rng(0).normal(size=(50, 4)), np.arange(50) % 2)
    >>> b.modality.value, len(b.train), len(b.val), len(b.test), b.class_names
    ('tabular', 40, 5, 5, ('0', '1'))
    """
    x_np, y_np = _as_numpy(x, "x"), _as_numpy(y, "y")
    if x_np.ndim == 0 or len(x_np) == 0:
        raise InvalidInputError("The 'x' parameter of from_arrays must hold at least one "
                                f"sample. Got shape {x_np.shape} instead.")
    if y_np.ndim == 0 or len(y_np) != len(x_np):
        raise InvalidInputError(f"The 'x' and 'y' parameters of from_arrays must have the same "
                                f"length. Got {len(x_np)} samples and "
                                f"{len(y_np) if y_np.ndim else 'a scalar'} labels instead.")
    if class_names is not None:
        if isinstance(class_names, str) or not len(class_names):
            raise InvalidInputError("The 'class_names' parameter of from_arrays must be a "
                                    f"non-empty list of names. Got {class_names!r} instead.")
        class_names = [str(c) for c in class_names]
    labels = _check_labels(y_np, len(x_np), class_names)
    if modality is None:
        mod = _infer_modality(x_np)
    else:
        mod = Modality(check_choice(getattr(modality, "value", modality), "modality",
                                    _MODALITIES, owner="from_arrays"))
    data = _check_x(x_np, mod)
    names = class_names or [str(k) for k in range(int(labels.max()) + 1)]
    seed = check_int(seed, "seed", owner="from_arrays", min=0)
    n_val, n_test = split_sizes(len(labels), val_fraction, test_fraction, owner="from_arrays")
    train, val, test = stratified_split(labels, n_val, n_test, seed=seed)
    shape: tuple[int | None, ...] = tuple(int(s) for s in data.shape[1:])
    if mod is Modality.SEQUENCE:
        shape = (None, shape[1])
    return make_bundle(
        name, {s: (data[i], labels[i]) for s, i in (("train", train), ("val", val), ("test", test))},
        class_names=names, modality=mod, input_shape=shape,
        info={"source": "arrays", "options": {"seed": seed, "val_fraction": val_fraction,
                                              "test_fraction": test_fraction}})


def from_image_folder(path: str | Path, *, image_size: tuple[int, int] = (28, 28),
                      grayscale: bool = True, val_fraction: float = 0.1,
                      test_fraction: float = 0.1, seed: int = 0,
                      name: str | None = None) -> DatasetBundle:
    """Load ``path/<class>/<image>`` files (one subfolder per class, sorted by name).

    Images are converted to grayscale (``grayscale=True``) or RGB, resized to ``image_size``
    (height, width) and scaled to [0, 1]: samples are float32 [C, H, W]. Files whose extension is
    not an image's (:data:`IMAGE_EXTENSIONS`) are ignored; hidden folders are skipped.

    Raises
    ------
    DataNotFoundError : ``path`` does not exist or is not a folder.
    InvalidInputError : no class subfolders, a class without images, or an unreadable image
        (the message names the file).
    """
    from PIL import Image, UnidentifiedImageError  # pillow: only needed here

    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataNotFoundError(f"The 'path' parameter of from_image_folder must be an existing "
                                f"folder. {str(root)!r} does not exist or is not a folder.")
    if not isinstance(image_size, (tuple, list)) or len(image_size) != 2:
        raise InvalidInputError(f"The 'image_size' parameter of from_image_folder must be "
                                f"(height, width). Got {image_size!r} instead.")
    h = check_int(image_size[0], "image_size[0]", owner="from_image_folder", min=1)
    w = check_int(image_size[1], "image_size[1]", owner="from_image_folder", min=1)
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise InvalidInputError(f"The folder {str(root)!r} has no class subfolders. Put each "
                                f"class's images in its own subfolder: {root}/<class>/<image>.")
    files, labels = [], []
    for k, folder in enumerate(classes):
        found = sorted(f for f in folder.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS
                       and f.is_file())
        if not found:
            raise InvalidInputError(
                f"The class folder {str(folder)!r} holds no images (extensions "
                f"{', '.join(IMAGE_EXTENSIONS)}). Add images or remove the folder.")
        files += found
        labels += [k] * len(found)
    mode = "L" if grayscale else "RGB"
    x = np.empty((len(files), 1 if grayscale else 3, h, w), dtype=np.float32)  # [N, C, H, W]
    for i, f in enumerate(files):
        try:
            with Image.open(f) as img:
                arr = np.asarray(img.convert(mode).resize((w, h), Image.Resampling.BILINEAR))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise InvalidInputError(f"The image {str(f)!r} could not be read ({exc}). Replace "
                                    f"or remove the file.") from None
        x[i] = (arr[None] if grayscale else arr.transpose(2, 0, 1)) / np.float32(255.0)
    bundle = from_arrays(x, np.array(labels), modality=Modality.IMAGE,
                         class_names=[d.name for d in classes], val_fraction=val_fraction,
                         test_fraction=test_fraction, seed=seed, name=name or root.name)
    bundle.info.update({"source": str(root), "files": len(files),
                        "options": {**bundle.info["options"], "image_size": [h, w],
                                    "grayscale": bool(grayscale)}})
    return bundle
