"""Tokenizer and vocabulary for the zoo's text data: words to int64 ids and back.

Tokenization: lowercase (curly quotes folded to ``'``), then a regex keeps runs of letters and
digits, splits English negations and clitics off their word (``"don't"`` -> ``do``, ``n't``;
``"it's"`` -> ``it``, ``'s``), and keeps ``!`` and ``?`` as tokens of their own. Other
punctuation is dropped. Id 0 is ``<pad>``, id 1 is ``<unk>``.

Data encoded by a Hugging Face tokenizer (``rotten-tomatoes-wordpiece``) keeps that tokenizer;
:func:`tokenizer_files` turns it into the JSON files a run folder saves and
:func:`tokenizer_from_files` reads them back (no pickle, no hub, no remote code).
"""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from explain._validation import check_int
from explain.errors import InvalidInputError, InvalidTypeError, MissingExtraError

__all__ = ["PAD", "UNK", "Vocabulary", "tokenize", "TOKENIZER_FILES", "tokenizer_files",
           "tokenizer_from_files"]

PAD, UNK = "<pad>", "<unk>"
_TOKEN = re.compile(r"[a-z0-9]+(?=n't\b)|n't\b|'(?:s|re|ve|ll|d|m)\b|[a-z0-9]+|[!?]")
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'"})
_FORMAT = "deepscope-vocabulary/1"


def tokenize(text: str) -> list[str]:
    """Split ``text`` into lowercase tokens.

    Examples
    --------
    >>> tokenize("It's not bad -- it DOESN'T work!")
    ['it', "'s", 'not', 'bad', 'it', 'does', "n't", 'work', '!']
    """
    if not isinstance(text, str):
        raise InvalidTypeError(f"Texts to tokenize must be str. Got {type(text).__name__} "
                               f"({text!r}) instead.")
    return _TOKEN.findall(text.lower().translate(_QUOTES))


class Vocabulary:
    """Token <-> id map with ``0 = <pad>`` and ``1 = <unk>``; build it from training text only.

    Parameters
    ----------
    tokens : the tokens in id order, starting with ``"<pad>"``, ``"<unk>"``.
    max_len : default length of :meth:`encode` (the length the model was trained on).

    Examples
    --------
    >>> vocab = Vocabulary.build(["a great film!", "a dull film"], min_freq=1)
    >>> len(vocab), vocab.encode(["a great plot"], max_len=5).tolist()
    (7, [[2, 6, 1, 0, 0]])
    >>> vocab.decode([2, 6, 1, 0, 0])
    'a great <unk>'
    """

    def __init__(self, tokens: Sequence[str], max_len: int | None = None) -> None:
        self.itos = list(tokens)
        self.max_len = max_len
        self._validate()
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            dup = [t for t, c in Counter(self.itos).items() if c > 1]
            raise InvalidInputError(f"A Vocabulary's tokens must be unique. Got duplicates "
                                    f"{dup[:5]!r}.")

    def _validate(self) -> None:
        if self.itos[:2] != [PAD, UNK]:
            raise InvalidInputError(
                f"A Vocabulary's tokens must start with {PAD!r}, {UNK!r} (ids 0 and 1). Got "
                f"{self.itos[:2]!r} instead. Build it with Vocabulary.build(texts).")
        bad = [t for t in self.itos if not isinstance(t, str) or not t]
        if bad:
            raise InvalidInputError(f"A Vocabulary's tokens must be non-empty str. Got "
                                    f"{bad[:5]!r} instead.")
        if self.max_len is not None:
            self.max_len = check_int(self.max_len, "max_len", owner="Vocabulary", min=1)

    @classmethod
    def build(cls, texts: Iterable[str], *, min_freq: int = 2, max_size: int | None = 20000,
              max_len: int | None = None) -> Vocabulary:
        """Count tokens in ``texts`` and keep those seen ``min_freq`` times, most frequent first.

        ``max_size`` caps the vocabulary, counting ``<pad>`` and ``<unk>``; ties in frequency are
        broken alphabetically so the result does not depend on the order of ``texts``.
        """
        if isinstance(texts, str):
            raise InvalidTypeError("The 'texts' parameter of Vocabulary.build must be a list of "
                                   "str. Got a single str instead; wrap it in a list.")
        return cls.from_token_lists((tokenize(t) for t in texts), min_freq=min_freq,
                                    max_size=max_size, max_len=max_len)

    @classmethod
    def from_token_lists(cls, token_lists: Iterable[Sequence[str]], *, min_freq: int = 2,
                         max_size: int | None = 20000, max_len: int | None = None) -> Vocabulary:
        """:meth:`build` from texts already split by :func:`tokenize` (no second tokenization)."""
        min_freq = check_int(min_freq, "min_freq", owner="Vocabulary.build", min=1)
        if max_size is not None:
            max_size = check_int(max_size, "max_size", owner="Vocabulary.build", min=2)
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        kept = sorted((t for t, c in counts.items() if c >= min_freq),
                      key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[:max_size - 2]
        return cls([PAD, UNK, *kept], max_len=max_len)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)}, max_len={self.max_len})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Vocabulary) and self.itos == other.itos
                and self.max_len == other.max_len)

    def tokens(self, text: str) -> list[str]:
        """The tokens of ``text`` (before lookup; unknown words are kept as they are)."""
        return tokenize(text)

    def ids(self, text: str) -> list[int]:
        """Token ids of ``text``, unknown tokens as 1, neither padded nor truncated."""
        return [self.stoi.get(t, 1) for t in tokenize(text)]

    def encode(self, texts: str | Sequence[str], max_len: int | None = None) -> torch.Tensor:
        """Token ids [N, max_len] (int64): 0-padded at the end, truncated past ``max_len``.

        A single ``str`` gives [1, max_len]. ``max_len`` defaults to the vocabulary's own.
        """
        if isinstance(texts, str):
            texts = [texts]
        return self.encode_tokens([tokenize(t) for t in texts], max_len)

    def encode_tokens(self, token_lists: Sequence[Sequence[str]],
                      max_len: int | None = None) -> torch.Tensor:
        """:meth:`encode` for texts already split by :func:`tokenize`."""
        max_len = self.max_len if max_len is None else max_len
        if max_len is None:
            raise InvalidInputError("The 'max_len' parameter of Vocabulary.encode is required "
                                    "when the vocabulary has none. Pass max_len=48, say.")
        max_len = check_int(max_len, "max_len", owner="Vocabulary.encode", min=1)
        out = np.zeros((len(token_lists), max_len), dtype=np.int64)  # [N, max_len]
        get = self.stoi.get
        for row, tokens in enumerate(token_lists):
            ids = [get(t, 1) for t in tokens[:max_len]]
            out[row, :len(ids)] = ids
        return torch.from_numpy(out)

    def decode(self, ids: Any, *, skip_pad: bool = True) -> str | list[str]:
        """Tokens of ``ids`` joined by spaces; a 2-D input gives one string per row."""
        t = torch.as_tensor(ids)
        if t.dim() == 2:
            return [cast(str, self.decode(row, skip_pad=skip_pad)) for row in t]
        if t.dim() != 1 or t.is_floating_point():
            raise InvalidInputError(f"Vocabulary.decode needs integer ids of shape [L] or "
                                    f"[N, L]. Got {tuple(t.shape)} {t.dtype} instead.")
        bad = [int(i) for i in t if not 0 <= int(i) < len(self)]
        if bad:
            raise InvalidInputError(f"Vocabulary.decode: ids must be in 0..{len(self) - 1}. "
                                    f"Got {bad[:5]} instead.")
        return " ".join(self.itos[int(i)] for i in t if not (skip_pad and int(i) == 0))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the run folder saves it as ``vocab.json``)."""
        return {"format": _FORMAT, "tokens": list(self.itos), "max_len": self.max_len,
                "tokenizer": {"lowercase": True, "pattern": _TOKEN.pattern}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Vocabulary:
        """Rebuild a vocabulary from :meth:`to_dict`; raises InvalidInputError if malformed."""
        if not isinstance(d, dict) or d.get("format") != _FORMAT:
            got = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise InvalidInputError(f"A vocabulary dict must have format {_FORMAT!r}. Got "
                                    f"{got!r} instead; save it with Vocabulary.to_dict().")
        tokens = d.get("tokens")
        if not isinstance(tokens, list) or len(tokens) < 2:
            raise InvalidInputError("A vocabulary dict's 'tokens' must be a list starting with "
                                    f"'<pad>', '<unk>'. Got {type(tokens).__name__} instead.")
        tokenizer = d.get("tokenizer") or {}
        pattern = (tokenizer.get("pattern", _TOKEN.pattern) if isinstance(tokenizer, dict)
                   else tokenizer)
        if pattern != _TOKEN.pattern:
            raise InvalidInputError("The vocabulary was saved with another tokenizer pattern "
                                    f"({pattern!r}); this version tokenizes with "
                                    f"{_TOKEN.pattern!r}. Retrain or rebuild the vocabulary.")
        return cls(tokens, max_len=d.get("max_len"))


# A fast tokenizer is whole in tokenizer.json (vocabulary, merges, normaliser, special tokens);
# the two others hold its options. All JSON: the formats transformers writes and reads.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def tokenizer_files(tokenizer: Any) -> dict[str, bytes]:
    """The files of a Hugging Face fast tokenizer, by name (:data:`TOKENIZER_FILES`).

    Raises
    ------
    InvalidTypeError : ``tokenizer`` has no ``save_pretrained`` or writes no ``tokenizer.json``
        (a slow, Python-only tokenizer).
    """
    save = getattr(tokenizer, "save_pretrained", None)
    if not callable(save):
        raise InvalidTypeError(
            "A run folder saves a Hugging Face tokenizer (one with save_pretrained). Got "
            f"{type(tokenizer).__name__} instead.")
    with tempfile.TemporaryDirectory(prefix="deepscope-tokenizer-") as tmp:
        save(tmp)
        folder = Path(tmp)
        files = {n: (folder / n).read_bytes() for n in TOKENIZER_FILES if (folder / n).is_file()}
    if "tokenizer.json" not in files:
        raise InvalidTypeError(
            f"The tokenizer {type(tokenizer).__name__} wrote no tokenizer.json (a slow tokenizer); "
            "a run folder saves fast tokenizers only. Load it with use_fast=True.")
    return files


def tokenizer_from_files(files: dict[str, bytes]) -> Any:
    """The tokenizer :func:`tokenizer_files` saved, loaded offline with ``transformers``.

    Raises
    ------
    MissingExtraError : ``transformers`` is not installed.
    ValueError, OSError : the files do not make a tokenizer (the caller names the run folder).
    """
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:
        raise MissingExtraError(
            "This run saved a Hugging Face tokenizer; reading it needs the transformers package. "
            "Install it with `pip install 'deepscope[transformers]'`.") from exc
    unknown = sorted(set(files) - set(TOKENIZER_FILES))
    if unknown or "tokenizer.json" not in files:
        raise ValueError(f"expected tokenizer files {list(TOKENIZER_FILES)}, got {sorted(files)}")
    with tempfile.TemporaryDirectory(prefix="deepscope-tokenizer-") as tmp:
        for name, data in files.items():
            (Path(tmp) / name).write_bytes(data)
        return AutoTokenizer.from_pretrained(tmp, local_files_only=True, trust_remote_code=False)
