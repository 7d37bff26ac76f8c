"""``japanese-vowels``: which of 9 speakers uttered a vowel, from 12 LPC cepstrum channels.

Source: the UCI Japanese Vowels set as shipped by sktime
(``sktime/datasets/data/JapaneseVowels/JapaneseVowels_{TRAIN,TEST}.ts``, the files
``sktime.datasets.load_japanese_vowels`` reads), parsed directly so sktime is never imported.
270 training and 370 test utterances of 7 to 29 frames. The official test split is kept and the
validation split is carved (stratified by speaker) from the training utterances.

Samples are float32 [29, 12]: real frames standardized per channel with the statistics of the
training split, then padded at the end with all-zero frames. Padding is exactly zero and a real
frame is never all zero, so ``length = number of frames that are not all zero``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from explain._validation import check_int
from explain.card import Modality
from explain.errors import InvalidInputError
from zoo.data._split import make_bundle, package_file, stratified_split, subsample
from zoo.data.base import DatasetBundle
from zoo.registry import register_dataset

__all__ = ["MAX_LEN", "NUM_CHANNELS", "load_japanese_vowels", "read_ts", "sequence_lengths"]

MAX_LEN = 29
NUM_CHANNELS = 12
_INSTALL = "pip install sktime"


def read_ts(path: str | Path) -> tuple[list[np.ndarray], np.ndarray]:
    """Parse a multivariate, unequal-length ``.ts`` file (sktime's text format).

    Each line after ``@data`` holds one series: channels separated by ``:``, values by ``,``,
    and the class label last.

    Returns
    -------
    series : list of float32 arrays [T_i, channels].
    labels : the class labels as strings, [N].
    """
    path = Path(path)
    series: list[np.ndarray] = []
    labels: list[str] = []
    in_data = False
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            in_data = line.lower() == "@data"
            continue
        *channels, label = line.split(":")
        try:
            arr = np.array([[float(v) for v in ch.split(",")] for ch in channels],
                           dtype=np.float32)
        except ValueError:
            raise InvalidInputError(
                f"The .ts file {str(path)!r} is corrupt at line {lineno}: every channel must be "
                f"the same number of comma-separated numbers. Reinstall it with "
                f"`{_INSTALL}`.") from None
        series.append(arr.T)  # [time, channels]
        labels.append(label.strip())
    if not series:
        raise InvalidInputError(f"The .ts file {str(path)!r} holds no series after '@data'. "
                                f"Reinstall it with `{_INSTALL}`.")
    return series, np.array(labels)


@lru_cache(maxsize=1)
def _raw() -> dict[str, tuple[tuple[np.ndarray, ...], np.ndarray, str]]:
    """Per official split: the series [T_i, 12], 0-based speaker labels and the file (cached)."""
    out = {}
    for split in ("train", "test"):
        path = package_file("sktime", f"datasets/data/JapaneseVowels/JapaneseVowels_"
                            f"{split.upper()}.ts", install=_INSTALL)
        series, labels = read_ts(path)
        bad = [i for i, s in enumerate(series) if s.shape[1] != NUM_CHANNELS
               or not 1 <= s.shape[0] <= MAX_LEN or not np.isfinite(s).all()]
        if bad:
            raise InvalidInputError(
                f"The .ts file {str(path)!r} is corrupt: series {bad[:5]} must be finite with "
                f"{NUM_CHANNELS} channels and 1..{MAX_LEN} frames. Reinstall it with `{_INSTALL}`.")
        for s in series:
            s.setflags(write=False)
        y = labels.astype(np.int64) - 1  # speakers 1..9 -> 0..8
        y.setflags(write=False)
        out[split] = (tuple(series), y, str(path))
    return out


def _pad(series: list[np.ndarray], mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Standardize real frames, then pad with all-zero frames to [N, MAX_LEN, 12]."""
    x = np.zeros((len(series), MAX_LEN, NUM_CHANNELS), dtype=np.float32)  # [batch, time, features]
    for i, s in enumerate(series):
        frames = (s - mean) / std
        dead = ~frames.any(axis=1)  # a real frame that became all zero would read as padding
        frames[dead, 0] = np.float32(1e-6)
        x[i, :len(s)] = frames
    return x


def sequence_lengths(x) -> np.ndarray:
    """Lengths [N] of padded sequences [N, T, F]: the index after the last frame that is not all zero.

    Examples
    --------
    >>> x = np.zeros((2, 4, 3), dtype=np.float32); x[0, :2] = 1; x[1, :3] = 1
    >>> sequence_lengths(x).tolist()
    [2, 3]
    """
    x = np.asarray(x)
    real = (x != 0).any(axis=-1)  # [N, T]
    t = x.shape[1]
    last = t - np.argmax(real[:, ::-1], axis=1)
    return np.where(real.any(axis=1), last, 0)


@register_dataset("japanese-vowels")
def load_japanese_vowels(*, seed: int = 0, val_size: int = 45,
                         train_size: int | None = None) -> DatasetBundle:
    """Load ``japanese-vowels``: 9 speakers, [29, 12] padded sequences (default 225/45/370).

    Parameters
    ----------
    seed : seed of the validation split carved from the official training split.
    val_size : utterances moved from train to validation (stratified by speaker).
    train_size : keep only this many training utterances (stratified); ``None`` keeps all.

    Examples
    --------
    >>> import zoo
    >>> b = zoo.load_dataset("japanese-vowels")
    >>> len(b.train), len(b.val), len(b.test), b.input_shape
    (225, 45, 370, (None, 12))
    >>> lengths = sequence_lengths(b.test.tensors[0])
    >>> int(lengths.min()), int(lengths.max())
    (7, 29)
    """
    seed = check_int(seed, "seed", owner="japanese-vowels", min=0)
    raw = _raw()
    series, labels, train_path = raw["train"]
    test_series, test_labels, test_path = raw["test"]
    val_size = check_int(val_size, "val_size", owner="japanese-vowels", min=0,
                         max=len(labels) - 9)
    train, val, _ = stratified_split(labels, val_size, 0, seed=seed)
    train = train[subsample(labels[train], train_size, seed=seed, owner="japanese-vowels")]
    frames = np.concatenate([series[i] for i in train])  # statistics of training frames only
    mean, std = frames.mean(axis=0), frames.std(axis=0)
    std = np.where(std > 0, std, 1).astype(np.float32)

    def part(all_series, all_labels, idx):
        return _pad([all_series[i] for i in idx], mean, std), all_labels[idx]

    return make_bundle(
        "japanese-vowels",
        {"train": part(series, labels, train), "val": part(series, labels, val),
         "test": part(test_series, test_labels, np.arange(len(test_labels)))},
        class_names=[f"speaker {k}" for k in range(1, 10)], modality=Modality.SEQUENCE,
        input_shape=(None, NUM_CHANNELS),
        info={"source": [train_path, test_path], "package": "sktime",
              "licence": "UCI (CC BY 4.0)", "max_len": MAX_LEN,
              "standardization": {"mean": mean.tolist(), "std": std.tolist()},
              "options": {"seed": seed, "val_size": val_size, "train_size": train_size}})
