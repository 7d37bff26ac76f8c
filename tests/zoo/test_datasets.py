"""The zoo's data sets: one conformance test over every registered loader, plus each loader's
own contract (IDX parsing, sequence padding, the text vocabulary, bring-your-own data)."""

from __future__ import annotations

import gzip
import json
import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import zoo
from explain.card import Modality
from explain.errors import (
    DataNotFoundError,
    InvalidInputError,
    InvalidTypeError,
    MissingExtraError,
    UnknownNameError,
)
from zoo.data.custom import from_arrays, from_image_folder
from zoo.data.japanese_vowels import sequence_lengths
from zoo.data.text import Vocabulary, tokenize

# Per-dataset options that keep the conformance test fast, and the split sizes they give.
OPTIONS = {"fashion-mnist": {"limit": 2000},
           "spoken-digits": {"voices": 12, "renditions": 1, "progress": False}}
SIZES = {"mnist-5k": (4000, 500, 500), "digits": (1437, 180, 180),
         "fashion-mnist": (2000, 5000, 10000), "japanese-vowels": (225, 45, 370),
         "rotten-tomatoes": (10202, 1275, 1275)}
_CACHE: dict[tuple[str, int], zoo.DatasetBundle] = {}


def _load(name: str, seed: int = 0) -> zoo.DatasetBundle:
    if (name, seed) not in _CACHE:
        try:
            _CACHE[name, seed] = zoo.load_dataset(name, seed=seed, **OPTIONS.get(name, {}))
        except (DataNotFoundError, MissingExtraError) as exc:
            pytest.skip(f"{name}: data not installed here ({exc})")
    return _CACHE[name, seed]


def _splits(b: zoo.DatasetBundle):
    return {"train": b.train, "val": b.val, "test": b.test}


def _row_keys(x: torch.Tensor) -> list[bytes]:
    return [row.tobytes() for row in x.reshape(len(x), -1).numpy()]


# ----------------------------------------------------------------------------- conformance
@pytest.mark.parametrize("name", zoo.list_datasets())
def test_dataset_conformance(name):
    b = _load(name)
    assert b.name == name
    assert isinstance(b.modality, Modality)
    assert len(b.class_names) == b.num_classes >= 2
    assert all(isinstance(c, str) and c for c in b.class_names)
    assert b.info["sizes"] == {s: len(d) for s, d in _splits(b).items()}
    if name in SIZES:
        assert (len(b.train), len(b.val), len(b.test)) == SIZES[name]
    json.dumps(b.info)  # JSON values only
    for split, ds in _splits(b).items():
        x, y = ds.tensors
        assert len(x) == len(y) == len(ds) > 0, split
        assert y.dtype == torch.int64 and y.dim() == 1
        assert 0 <= int(y.min()) and int(y.max()) < b.num_classes
        assert x.dim() == 1 + len(b.input_shape)
        for got, want in zip(x.shape[1:], b.input_shape):
            assert want is None or got == want, (split, tuple(x.shape), b.input_shape)
        if b.modality is Modality.TEXT:
            assert x.dtype == torch.int64
            assert int(x.min()) >= 0 and int(x.max()) < len(b.vocab)
            nonpad = (x != 0).int()  # padding only at the end: non-pad flags never increase
            assert bool((nonpad[:, 1:] <= nonpad[:, :-1]).all())
        else:
            assert x.dtype == torch.float32
            assert bool(torch.isfinite(x).all())
        if b.modality is Modality.IMAGE:
            assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
        if b.modality is Modality.SEQUENCE:
            real = (x != 0).any(-1).int()  # [N, T]: zero frames only trail
            assert bool((real[:, 1:] <= real[:, :-1]).all())
    # every class is trained on
    assert set(b.train.tensors[1].tolist()) == set(range(b.num_classes))
    kw = b.model_kwargs()
    assert kw["num_classes"] == b.num_classes and kw["input_shape"] == tuple(b.input_shape)
    assert ("vocab_size" in kw) == (b.modality is Modality.TEXT)


@pytest.mark.parametrize("name", zoo.list_datasets())
def test_dataset_splits_do_not_overlap(name):
    b = _load(name)
    keys = {s: _row_keys(d.tensors[0]) for s, d in _splits(b).items()}
    pool = sum(keys.values(), [])
    duplicates_in_pool = len(pool) - len(set(pool))  # identical rows can only come from these
    shared = (len(set(keys["train"]) & set(keys["val"])) + len(set(keys["train"]) & set(keys["test"]))
              + len(set(keys["val"]) & set(keys["test"])))
    assert shared <= duplicates_in_pool
    if b.modality is Modality.IMAGE:
        assert shared == 0


@pytest.mark.parametrize("name", zoo.list_datasets())
def test_dataset_is_seeded(name):
    b0, b1 = _load(name, 0), _load(name, 1)
    again = zoo.load_dataset(name, seed=0, **OPTIONS.get(name, {}))
    for split in ("train", "val", "test"):
        for t0, t in zip(getattr(b0, split).tensors, getattr(again, split).tensors):
            assert torch.equal(t0, t), split
    assert not torch.equal(b0.train.tensors[1], b1.train.tensors[1])
    with pytest.raises(InvalidInputError, match=f"'seed' parameter of {name} must be an int >= 0"):
        zoo.load_dataset(name, seed=-1)


@pytest.mark.parametrize("name", zoo.list_datasets())
def test_dataset_train_size_subsamples_train_only(name):
    full = _load(name)
    options = {k: v for k, v in OPTIONS.get(name, {}).items() if k != "limit"}
    small = zoo.load_dataset(name, train_size=60, **options)
    assert len(small.train) == 60
    counts = np.bincount(small.train.tensors[1].numpy(), minlength=full.num_classes)
    assert counts.max() - counts.min() <= 2 if not name.startswith("rotten-tomatoes") else \
        counts.min() >= 20
    for split in ("val", "test"):  # held-out data do not depend on train_size
        assert torch.equal(getattr(small, split).tensors[1], getattr(full, split).tensors[1])


@pytest.mark.parametrize("name", ["mnist-5k", "digits", "japanese-vowels", "rotten-tomatoes"])
def test_dataset_val_split_is_stratified(name):
    b = _load(name)
    train = np.bincount(b.train.tensors[1].numpy(), minlength=b.num_classes) / len(b.train)
    val = np.bincount(b.val.tensors[1].numpy(), minlength=b.num_classes) / len(b.val)
    assert np.abs(train - val).max() < 0.02


def test_unknown_dataset_lists_close_names():
    with pytest.raises(UnknownNameError, match="Did you mean 'mnist-5k'"):
        zoo.load_dataset("mnist5k")


def test_mnist_5k_values_and_cached_reload_is_fast():
    b = _load("mnist-5k")
    assert b.class_names == tuple("0123456789")
    assert np.bincount(b.test.tensors[1].numpy()).tolist() == [50] * 10
    start = time.perf_counter()
    zoo.load_dataset("mnist-5k", seed=3)
    assert time.perf_counter() - start < 1.0
    with pytest.raises(InvalidInputError, match="'val_size' parameter of mnist-5k"):
        zoo.load_dataset("mnist-5k", val_size=-1)


# ----------------------------------------------------------------------------- fashion-mnist IDX
def _write_idx(path, arr: np.ndarray, *, magic: bytes | None = None) -> None:
    header = magic or bytes([0, 0, 0x08, arr.ndim])
    dims = np.array(arr.shape, dtype=">i4").tobytes()
    path.write_bytes(gzip.compress(header + dims + arr.astype(np.uint8).tobytes()))


def _fake_fashion(root, n_train=40, n_test=20):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)


def test_fashion_mnist_parses_idx_files(tmp_path):
    _fake_fashion(tmp_path)
    b = zoo.load_dataset("fashion-mnist", root=tmp_path, val_size=10)
    assert (len(b.train), len(b.val), len(b.test)) == (30, 10, 20)
    assert b.class_names[0] == "T-shirt/top" and b.class_names[9] == "Ankle boot"
    assert tuple(b.test.tensors[0].shape) == (20, 1, 28, 28)
    assert b.test.tensors[1].tolist() == [i % 10 for i in range(20)]  # official order kept
    assert np.bincount(b.val.tensors[1].numpy()).tolist() == [1] * 10
    small = zoo.load_dataset("fashion-mnist", root=tmp_path, val_size=10, limit=10)
    assert len(small.train) == 10
    with pytest.raises(InvalidInputError, match="same option. Got limit=10 and train_size=20"):
        zoo.load_dataset("fashion-mnist", root=tmp_path, val_size=10, limit=10, train_size=20)


def test_fashion_mnist_missing_folder_says_how_to_install(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataNotFoundError) as err:
        zoo.load_dataset("fashion-mnist", root=missing)
    msg = str(err.value)
    assert str(missing) in msg
    assert "apt-get install dataset-fashion-mnist" in msg and "root=" in msg
    assert isinstance(err.value, FileNotFoundError)


def test_fashion_mnist_missing_file_is_named(tmp_path):
    _fake_fashion(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataNotFoundError, match="t10k-labels-idx1-ubyte.gz"):
        zoo.load_dataset("fashion-mnist", root=tmp_path, val_size=10)


@pytest.mark.parametrize("corruption, match", [
    ("magic", "magic number must be 00000803.*Got 00000903"),
    ("truncated", "must hold 31376 bytes. Got 31000"),
    ("not-gzip", "could not be decompressed"),
])
def test_fashion_mnist_corrupt_idx_names_the_file(tmp_path, corruption, match):
    _fake_fashion(tmp_path)
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    images = np.zeros((40, 28, 28), dtype=np.uint8)
    if corruption == "magic":
        _write_idx(bad, images, magic=bytes([0, 0, 0x09, 3]))
    elif corruption == "truncated":
        raw = bytes([0, 0, 8, 3]) + np.array([40, 28, 28], ">i4").tobytes() + images.tobytes()
        bad.write_bytes(gzip.compress(raw[:31000]))
    else:
        bad.write_bytes(b"this is not a gzip file")
    with pytest.raises(InvalidInputError, match=match) as err:
        zoo.load_dataset("fashion-mnist", root=tmp_path, val_size=10)
    assert str(bad) in str(err.value)


# ----------------------------------------------------------------------------- japanese-vowels
def test_japanese_vowels_padding_recovers_lengths():
    from zoo.data.japanese_vowels import _raw

    b = _load("japanese-vowels")
    x = b.test.tensors[0]  # [370, 29, 12], official order
    lengths = sequence_lengths(x)
    assert lengths.tolist() == [len(s) for s in _raw()["test"][0]]
    assert lengths.min() == 7 and lengths.max() == 29
    for i, n in enumerate(lengths):
        assert bool((x[i, n:] == 0).all())  # padding exactly zero
        assert bool((x[i, :n] != 0).any(-1).all())  # no real frame is all zero
    real = b.train.tensors[0][(b.train.tensors[0] != 0).any(-1)]  # [frames, 12]
    assert torch.allclose(real.mean(0), torch.zeros(12), atol=1e-4)
    assert torch.allclose(real.std(0), torch.ones(12), atol=1e-2)
    assert b.input_shape == (None, 12) and b.class_names[0] == "speaker 1"
    assert np.bincount(b.val.tensors[1].numpy()).tolist() == [5] * 9


@pytest.mark.slow
def test_japanese_vowels_matches_sktime_loader():
    from sktime.datasets import load_japanese_vowels

    from zoo.data.japanese_vowels import _raw

    X, y = load_japanese_vowels(split="test", return_type="nested_univ")
    series, labels, _ = _raw()["test"]
    assert labels.tolist() == [int(v) - 1 for v in y]
    for i in (0, 100, 369):
        want = np.stack([X.iloc[i, c].to_numpy() for c in range(12)], axis=1)
        np.testing.assert_allclose(series[i], want, rtol=1e-6)


# ----------------------------------------------------------------------------- vocabulary
def test_tokenize_keeps_negations_and_exclamations():
    assert tokenize("Don't miss it!  It\u2019s GREAT?") == [
        "do", "n't", "miss", "it", "!", "it", "'s", "great", "?"]


def test_vocabulary_round_trip_and_unknown_words():
    vocab = Vocabulary.build(["a fine film", "a fine cast", "a dull film!"], min_freq=2,
                             max_len=6)
    assert vocab.itos == ["<pad>", "<unk>", "a", "film", "fine"]
    ids = vocab.encode(["A fine, FINE film about nothing", "film"])
    assert ids.dtype == torch.int64 and ids.tolist() == [[2, 4, 4, 3, 1, 1], [3, 0, 0, 0, 0, 0]]
    assert vocab.encode("a a a a a a a a", max_len=3).tolist() == [[2, 2, 2]]  # truncated
    assert vocab.decode(ids) == ["a fine fine film <unk> <unk>", "film"]
    assert vocab.tokens("Dull!") == ["dull", "!"] and "dull" not in vocab
    again = Vocabulary.from_dict(json.loads(json.dumps(vocab.to_dict())))
    assert again == vocab and len(again) == 5 and again.max_len == 6
    assert torch.equal(again.encode(["a dull film"]), vocab.encode(["a dull film"]))
    texts = ["a fine film", "a fine cast", "a dull film!"]
    pre = Vocabulary.from_token_lists([tokenize(t) for t in texts], min_freq=2, max_len=6)
    assert pre == vocab
    assert torch.equal(pre.encode_tokens([tokenize(t) for t in texts]), vocab.encode(texts))


def test_vocabulary_max_size_and_errors():
    vocab = Vocabulary.build(["b b b a a c"], min_freq=1, max_size=4)
    assert vocab.itos == ["<pad>", "<unk>", "b", "a"]
    with pytest.raises(InvalidInputError, match="format 'deepscope-vocabulary/1'"):
        Vocabulary.from_dict({"tokens": ["<pad>", "<unk>"]})
    with pytest.raises(InvalidInputError, match="must start with '<pad>', '<unk>'"):
        Vocabulary(["<unk>", "<pad>", "x"])
    with pytest.raises(InvalidInputError, match="unique. Got duplicates \\['x'\\]"):
        Vocabulary(["<pad>", "<unk>", "x", "x"])
    with pytest.raises(InvalidInputError, match="'max_len' parameter of Vocabulary.encode"):
        vocab.encode(["b"])
    with pytest.raises(InvalidInputError, match="ids must be in 0..3. Got \\[7\\]"):
        vocab.decode([2, 7])
    with pytest.raises(InvalidInputError, match="'min_freq' parameter of Vocabulary.build must "
                       "be an int >= 1. Got 0 instead."):
        Vocabulary.build(["a"], min_freq=0)
    with pytest.raises(InvalidTypeError, match="single str"):
        Vocabulary.build("not a list")


def test_rotten_tomatoes_vocab_is_built_from_train_only():
    b = _load("rotten-tomatoes")
    assert b.vocab.max_len == 48 == b.input_shape[0]
    assert b.class_names == ("rotten", "fresh")
    assert len(b.vocab) == b.info["vocab_size"] and b.model_kwargs()["vocab_size"] == len(b.vocab)
    assert b.info["duplicates_dropped"] == 56
    # a token is in the vocabulary only if it occurs >= 2 times among the training snippets
    train_counts = torch.bincount(b.train.tensors[0].flatten(), minlength=len(b.vocab))
    assert int(train_counts[2:].min()) >= 2
    test_unk = float((b.test.tensors[0] == 1).sum() / (b.test.tensors[0] != 0).sum())
    assert 0.0 < test_unk < 0.15


# ----------------------------------------------------------------------------- bring your own
def test_from_arrays_infers_modality_and_splits():
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    cases = [(rng.normal(size=(60, 4)), Modality.TABULAR, (4,)),
             (rng.integers(0, 9, (60, 7)), Modality.TEXT, (7,)),
             (torch.randn(60, 5, 2), Modality.SEQUENCE, (None, 2)),
             (rng.random((60, 3, 6, 6)), Modality.IMAGE, (3, 6, 6))]
    for x, modality, shape in cases:
        b = from_arrays(x, torch.as_tensor(y))
        assert b.modality is modality and b.input_shape == shape
        assert (len(b.train), len(b.val), len(b.test)) == (48, 6, 6)
        assert b.class_names == ("0", "1", "2")
    img = from_arrays(np.full((10, 4, 4), 255, dtype=np.uint8), np.arange(10) % 2,
                      modality="image", class_names=["cat", "dog"])
    assert img.input_shape == (1, 4, 4) and float(img.train.tensors[0].max()) == 1.0


@pytest.mark.parametrize("x, y, kwargs, error, message", [
    (np.zeros((5, 3)), np.zeros(4), {}, InvalidInputError,
     "must have the same length. Got 5 samples and 4 labels"),
    (np.zeros((5, 3)), [0, 1, 2, -1, 1.5], {}, InvalidInputError,
     "integer class ids 0..K-1. Got -1.0, 1.5 at positions 3, 4"),
    (np.zeros((4, 3)), [0, 1, 2, 3], {"class_names": ["a", "b"]}, InvalidInputError,
     "integer class ids 0..1. Got 2, 3 at positions 2, 3"),
    (np.array([[0.0, np.nan], [np.inf, 1.0]]), [0, 1], {}, InvalidInputError,
     "must be finite. Got NaN or inf at positions \\(0, 1\\), \\(1, 0\\)"),
    (np.zeros((0, 3)), [], {}, InvalidInputError, "at least one sample. Got shape \\(0, 3\\)"),
    (np.zeros((4, 3)), np.array(list("abcd")), {}, InvalidTypeError,
     "integer class ids 0..K-1. Got dtype <U1"),
    (np.zeros((4, 3)), [0, 1, 0, 1], {"modality": "audio"}, InvalidInputError,
     "'modality' parameter of from_arrays must be one of"),
    (np.zeros((4, 3)), [0, 1, 0, 1], {"val_fraction": 0.6, "test_fraction": 0.5},
     InvalidInputError, "must sum to < 1"),
    (np.zeros(4), [0, 1, 0, 1], {}, InvalidInputError, "must have 2 .* dimensions. Got shape"),
    ("abc", [0], {}, InvalidTypeError, "numpy array or a torch tensor. Got str"),
])
def test_from_arrays_validation_messages(x, y, kwargs, error, message):
    with pytest.raises(error, match=message):
        from_arrays(x, y, **kwargs)


def _image_folder(root):
    from PIL import Image

    for name, shade in (("dark", 30), ("light", 220)):
        (root / name).mkdir(parents=True)
        for i in range(5):
            Image.new("RGB", (12, 10), (shade, shade, shade)).save(root / name / f"{i}.png")
    (root / "light" / "notes.txt").write_text("ignored")


def test_from_image_folder_reads_classes(tmp_path):
    _image_folder(tmp_path / "shades")
    b = from_image_folder(tmp_path / "shades", image_size=(8, 6), val_fraction=0.2,
                          test_fraction=0.2)
    assert b.class_names == ("dark", "light") and b.name == "shades"
    assert (len(b.train), len(b.val), len(b.test)) == (6, 2, 2)
    x, y = b.train.tensors
    assert tuple(x.shape[1:]) == (1, 8, 6) and x.dtype == torch.float32
    for xi, yi in zip(x, y):
        assert abs(float(xi.mean()) - (30 if yi == 0 else 220) / 255) < 0.01
    rgb = from_image_folder(tmp_path / "shades", grayscale=False)
    assert rgb.input_shape == (3, 28, 28) and rgb.info["files"] == 10


def test_from_image_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        from_image_folder(tmp_path / "missing")
    (tmp_path / "flat").mkdir()
    with pytest.raises(InvalidInputError, match="has no class subfolders"):
        from_image_folder(tmp_path / "flat")
    _image_folder(tmp_path / "data")
    (tmp_path / "data" / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="'.*empty' holds no images"):
        from_image_folder(tmp_path / "data")
    (tmp_path / "data" / "empty" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(InvalidInputError, match="broken.png' could not be read"):
        from_image_folder(tmp_path / "data")


# ----------------------------------------------------------------------------- the split itself
@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=3, max_size=80), st.data())
def test_stratified_split_is_an_exact_partition(labels, data):
    from zoo.data._split import stratified_split

    y = np.array(labels)
    n_val = data.draw(st.integers(0, len(y) - 1))
    n_test = data.draw(st.integers(0, len(y) - 1 - n_val))
    train, val, test = stratified_split(y, n_val, n_test, seed=data.draw(st.integers(0, 9)))
    assert (len(val), len(test)) == (n_val, n_test)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(len(y)))
    classes, counts = np.unique(y, return_counts=True)
    if n_val + n_test <= len(y) - len(classes):  # room to keep every class in train
        assert set(y[train].tolist()) == set(classes.tolist())
        if counts.min() * (n_val + n_test) >= len(y):  # no class too small for its quota
            for c, count in zip(classes, counts):  # proportional within rounding
                for idx, n in ((val, n_val), (test, n_test)):
                    assert abs(int((y[idx] == c).sum()) - count * n / len(y)) < 2
