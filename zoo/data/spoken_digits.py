"""``spoken-digits``: the words "zero" ... "nine" synthesised on this machine, as log-mel spectrograms.

Keyword spotting without a download: espeak-ng says each word in many voices (8 English accents
x 12 male and female variants), at drawn speaking rates and pitches; sox resamples to 16 kHz mono;
each clip is augmented (gain, time shift, background noise at several SNRs). The corpus is
synthesised once into the cache (:func:`zoo.data._speech.cache_root`) and read from there later.

The splits are **speaker independent**: whole voices go to train, validation or test (stratified
by gender), so the test set measures how well a model hears voices it never heard.

Features are log-mel spectrograms computed with librosa: 25 ms windows, 10 ms hop, ``n_mels``
bands (40 or 64), standardised per band with training statistics. ``layout="spectrogram"`` gives
``[1, n_mels, 101]`` images for CNNs; ``layout="frames"`` gives ``[101, n_mels]`` sequences for
recurrent models. The bundle keeps every clip's waveform, aligned with the features, for playback.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass, field

import numpy as np
import torch

from explain._core.audio import wav_bytes
from explain._core.io import atomic_write_bytes
from explain._validation import check_bool, check_choice, check_int
from explain.card import Modality
from explain.errors import InvalidInputError, MissingExtraError
from zoo.data import _speech
from zoo.data._split import make_bundle, split_sizes, subsample
from zoo.data.base import DatasetBundle
from zoo.registry import register_dataset

__all__ = ["AudioBundle", "load_spoken_digits", "log_mel", "voice_split", "to_wav_bytes",
           "WIN_LENGTH", "HOP_LENGTH", "N_FFT"]

_OWNER = "spoken-digits"
WIN_LENGTH = 400    # 25 ms at 16 kHz
HOP_LENGTH = 160    # 10 ms
N_FFT = 512
_CHUNK = 256        # clips per librosa call (bounds the STFT's memory)


@dataclass
class AudioBundle(DatasetBundle):
    """A :class:`DatasetBundle` whose samples are sounds.

    Attributes (besides the bundle's)
    ---------------------------------
    sample_rate : samples per second of :attr:`waveforms`.
    waveforms : split -> int16 tensor ``[N, samples]``; row ``i`` is the sound of sample ``i``
        of that split (same order as ``bundle.<split>.tensors``).
    voices : split -> the espeak-ng voice of each clip (``"en-us+f3"``).
    """

    sample_rate: int = _speech.SAMPLE_RATE
    waveforms: dict[str, torch.Tensor] = field(default_factory=dict)
    voices: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def waveform(self, split: str, index: int) -> np.ndarray:
        """The clip of sample ``index`` of ``split`` as float32 in [-1, 1]."""
        check_choice(split, "split", list(self.waveforms), owner="AudioBundle.waveform")
        n = len(self.waveforms[split])
        i = check_int(index, "index", owner="AudioBundle.waveform", min=0, max=n - 1)
        return self.waveforms[split][i].numpy().astype(np.float32) / 32768.0

    def wav_bytes(self, split: str, index: int) -> bytes:
        """The clip of sample ``index`` of ``split`` as a 16-bit PCM WAV file (for playback)."""
        return to_wav_bytes(self.waveform(split, index), self.sample_rate)


def to_wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """A mono 16-bit PCM WAV file of float ``samples`` in [-1, 1] (clipped); the one WAV writer
    of :mod:`explain._core.audio` (the audit's clips are written by it too).

    Examples
    --------
    >>> data = to_wav_bytes(np.zeros(160, dtype=np.float32), 16000)
    >>> data[:4], data[8:12], len(data)
    (b'RIFF', b'WAVE', 364)
    """
    return wav_bytes(samples, sample_rate)


def _librosa():
    try:
        import librosa
    except ImportError as exc:
        raise MissingExtraError(
            "The spoken-digits data set computes log-mel spectrograms with librosa, which is "
            "not installed. Install it with `pip install 'deepscope[zoo]'` (or `pip install "
            "librosa`).") from exc
    return librosa


def log_mel(waveforms: np.ndarray, n_mels: int = 40,
            sample_rate: int = _speech.SAMPLE_RATE) -> np.ndarray:
    """Log-mel power spectrograms ``[N, n_mels, frames]`` (dB, float32) of int16 ``[N, samples]``.

    librosa's mel filter bank (Slaney), 25 ms Hann windows, 10 ms hop, centred frames: a one-second
    clip at 16 kHz has 101 frames.

    Examples
    --------
    >>> log_mel(np.zeros((2, 16000), dtype=np.int16), n_mels=40).shape
    (2, 40, 101)
    """
    librosa = _librosa()
    out = []
    for i in range(0, len(waveforms), _CHUNK):
        y = waveforms[i:i + _CHUNK].astype(np.float32) / 32768.0
        s = librosa.feature.melspectrogram(y=y, sr=sample_rate, n_fft=N_FFT, hop_length=HOP_LENGTH,
                                           win_length=WIN_LENGTH, n_mels=n_mels, fmin=20.0,
                                           fmax=sample_rate / 2)
        out.append(librosa.power_to_db(s, ref=1.0, amin=1e-10, top_db=None).astype(np.float32))
    frames = 1 + waveforms.shape[-1] // HOP_LENGTH
    return np.concatenate(out) if out else np.zeros((0, n_mels, frames), np.float32)


def _cached_log_mel(corpus: _speech.Corpus, n_mels: int) -> np.ndarray:
    """:func:`log_mel` of the corpus, cached next to its clips (a one-off like the synthesis:
    ~5 CPU seconds a load otherwise). The file name holds every feature parameter and librosa's
    version; an unreadable or foreign file is recomputed, a read-only cache only costs time."""
    if corpus.folder is None:
        return log_mel(corpus.waveforms, n_mels=n_mels)
    version = _librosa().__version__
    path = corpus.folder / (f"logmel-{n_mels}-{N_FFT}-{WIN_LENGTH}-{HOP_LENGTH}-"
                            f"librosa{version}.npy")
    expected = (len(corpus.waveforms), n_mels, 1 + corpus.waveforms.shape[-1] // HOP_LENGTH)
    try:
        spec = np.load(path, allow_pickle=False)
        if spec.shape == expected and spec.dtype == np.float32:
            return spec
    except (OSError, ValueError):
        pass
    spec = log_mel(corpus.waveforms, n_mels=n_mels)
    buf = io.BytesIO()
    np.save(buf, spec, allow_pickle=False)
    with contextlib.suppress(OSError):
        atomic_write_bytes(path, buf.getvalue())
    return spec


def voice_split(genders: list[str], val_fraction: float, test_fraction: float, *,
                seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voice indices of train, val and test; no voice is in two splits.

    The voices of each gender are shuffled (seeded) and interleaved in proportion, then test
    takes the first ``max(1, round(n * test_fraction))``, val the next ones, train the rest: every
    split hears male and female voices in about the corpus' proportions.

    Examples
    --------
    >>> tr, va, te = voice_split(["male"] * 6 + ["female"] * 4, 0.2, 0.2, seed=0)
    >>> len(tr), len(va), len(te), sorted(set(tr) | set(va) | set(te)) == list(range(10))
    (6, 2, 2, True)
    """
    rng = np.random.default_rng(seed)
    g = np.asarray(genders)
    order: list[tuple[float, int]] = []
    for gender in sorted(set(genders)):
        idx = rng.permutation(np.flatnonzero(g == gender))
        order += [((k + 0.5) / len(idx), int(i)) for k, i in enumerate(idx)]
    ranked = np.array([i for _, i in sorted(order)], dtype=np.int64)
    n_val, n_test = split_sizes(len(ranked), val_fraction, test_fraction, owner=_OWNER)
    n_val, n_test = max(n_val, int(val_fraction > 0)), max(n_test, int(test_fraction > 0))
    if n_val + n_test >= len(ranked):
        raise InvalidInputError(
            f"The spoken-digits split of {len(ranked)} voices with val_fraction={val_fraction} "
            f"and test_fraction={test_fraction} leaves no training voice. Use more voices or "
            f"smaller fractions.")
    return (np.sort(ranked[n_test + n_val:]), np.sort(ranked[n_test:n_test + n_val]),
            np.sort(ranked[:n_test]))


def _standardise(spec: np.ndarray, train: np.ndarray, layout: str) -> tuple[np.ndarray, dict]:
    """Per-band standardisation with training statistics; shape for ``layout``."""
    mean = spec[train].mean(axis=(0, 2), keepdims=True)
    std = spec[train].std(axis=(0, 2), keepdims=True)
    std = np.where(std > 0, std, 1.0)
    x = ((spec - mean) / std).astype(np.float32)                      # [N, mels, frames]
    if layout == "frames":
        x = np.ascontiguousarray(x.transpose(0, 2, 1))                # [N, frames, mels]
        dead = ~x.any(axis=2)          # an all-zero frame would read as padding to the GRU
        x[dead, 0] = np.float32(1e-6)
    else:
        x = x[:, None]                                                 # [N, 1, mels, frames]
    return x, {"mean": mean.ravel().tolist(), "std": std.ravel().tolist()}


def _check_options(seed, n_mels, layout, voices, renditions, corpus_seed, workers, progress):
    seed = check_int(seed, "seed", owner=_OWNER, min=0)
    n_mels = check_int(n_mels, "n_mels", owner=_OWNER, min=8, max=128)
    check_choice(layout, "layout", ["spectrogram", "frames"], owner=_OWNER)
    every = _speech.all_voices()
    n_voices = len(every) if voices is None else check_int(voices, "voices", owner=_OWNER,
                                                          min=3, max=len(every))
    renditions = check_int(renditions, "renditions", owner=_OWNER, min=1)
    corpus_seed = check_int(corpus_seed, "corpus_seed", owner=_OWNER, min=0)
    workers = min(8, 2 * (os.cpu_count() or 1)) if workers is None else \
        check_int(workers, "workers", owner=_OWNER, min=1)
    check_bool(progress, "progress", owner=_OWNER)
    return seed, n_mels, every[:n_voices], renditions, corpus_seed, workers


@register_dataset("spoken-digits")
def load_spoken_digits(*, seed: int = 0, n_mels: int = 40, layout: str = "spectrogram",
                       val_fraction: float = 0.1, test_fraction: float = 0.2,
                       train_size: int | None = None, voices: int | None = None,
                       renditions: int = 4, corpus_seed: int = 0,
                       cache_dir: str | os.PathLike | None = None, workers: int | None = None,
                       progress: bool = True) -> AudioBundle:
    """Load ``spoken-digits``: 10 words x 96 voices x 4 renditions = 3,840 one-second clips.

    Parameters
    ----------
    seed : seed of the voice split and of ``train_size`` (the corpus itself uses ``corpus_seed``).
    n_mels : mel bands (40 or 64 are usual).
    layout : ``"spectrogram"`` -> ``[1, n_mels, 101]`` (CNNs) or ``"frames"`` -> ``[101, n_mels]``
        (recurrent models).
    val_fraction, test_fraction : share of the voices (per gender) held out for val / test.
    train_size : keep only this many training clips (stratified by word); ``None`` keeps all.
    voices : use the first ``voices`` voices (>= 3) of the 96 (a small corpus for tests).
    renditions : renditions per voice (each a drawn rate and pitch): clips per word is
        ``voices * renditions``.
    corpus_seed : seed of the synthesis (rates, pitches, augmentation); part of the cache key.
    cache_dir : cache folder; default ``$DEEPSCOPE_CACHE`` else ``$XDG_CACHE_HOME/deepscope``.
    workers : concurrent espeak-ng/sox processes while synthesising.
    progress : show a progress bar while synthesising.

    Raises
    ------
    MissingExtraError
        espeak-ng or sox is missing (and the corpus is not cached), or librosa is missing.

    Examples
    --------
    >>> import zoo
    >>> b = zoo.load_dataset("spoken-digits", voices=6, renditions=1, progress=False)
    >>> b.input_shape, b.modality.value, b.sample_rate, tuple(b.waveforms["train"].shape[1:])
    ((1, 40, 101), 'audio', 16000, (16000,))
    >>> set(b.voices["train"]) & set(b.voices["test"])
    set()
    """
    seed, n_mels, voice_list, renditions, corpus_seed, workers = _check_options(
        seed, n_mels, layout, voices, renditions, corpus_seed, workers, progress)
    voice_split([v.gender for v in voice_list], val_fraction, test_fraction, seed=seed)  # validate
    corpus = _speech.load_corpus(voice_list, renditions, corpus_seed, cache_dir=cache_dir,
                                 workers=workers, progress=progress)
    v_train, v_val, v_test = voice_split([v.gender for v in voice_list], val_fraction,
                                         test_fraction, seed=seed)
    rng = np.random.default_rng(seed)
    idx = {name: rng.permutation(np.flatnonzero(np.isin(corpus.voice, v)))
           for name, v in (("train", v_train), ("val", v_val), ("test", v_test))}
    idx["train"] = idx["train"][subsample(corpus.labels[idx["train"]], train_size, seed=seed,
                                          owner=_OWNER)]
    spec = _cached_log_mel(corpus, n_mels)
    x, stats = _standardise(spec, idx["train"], layout)
    shape = (1, n_mels, spec.shape[2]) if layout == "spectrogram" else (spec.shape[2], n_mels)
    names = [v.name for v in voice_list]
    bundle = make_bundle(
        _OWNER, {s: (x[i], corpus.labels[i]) for s, i in idx.items()}, class_names=_speech.WORDS,
        modality=Modality.AUDIO, input_shape=shape,
        info={"source": "synthesised with espeak-ng and sox on this machine",
              "espeak_ng": corpus.meta.get("espeak_ng"), "licence": "generated (no licence)",
              "sample_rate": _speech.SAMPLE_RATE, "features": {
                  "kind": "log-mel power (dB), librosa", "n_mels": n_mels, "n_fft": N_FFT,
                  "win_length": WIN_LENGTH, "hop_length": HOP_LENGTH, "layout": layout},
              "standardization": stats,
              "voices": {s: sorted(names[int(v)] for v in vs)
                         for s, vs in (("train", v_train), ("val", v_val), ("test", v_test))},
              "synthesis_seconds": corpus.meta.get("synthesis_seconds"),
              "options": {"seed": seed, "n_mels": n_mels, "layout": layout,
                          "val_fraction": val_fraction, "test_fraction": test_fraction,
                          "train_size": train_size, "voices": len(voice_list),
                          "renditions": renditions, "corpus_seed": corpus_seed}})
    fields = {k: getattr(bundle, k) for k in DatasetBundle.__dataclass_fields__}
    return AudioBundle(
        **fields, sample_rate=_speech.SAMPLE_RATE,
        waveforms={s: torch.from_numpy(corpus.waveforms[i]) for s, i in idx.items()},
        voices={s: tuple(names[int(v)] for v in corpus.voice[i]) for s, i in idx.items()})
