"""Synthesis of the spoken-digits corpus with espeak-ng and sox, and its on-disk cache.

Private: :mod:`zoo.data.spoken_digits` is the loader users call through ``zoo.load_dataset``.

One *voice* is an espeak-ng English accent plus a voice variant (``en-gb-scotland+f3``). One
*rendition* of a voice draws a speaking rate and a pitch and says the ten words in a single
espeak-ng call (SSML breaks between the words); sox resamples it to 16 kHz mono and the words
are cut at the breaks. Every word of a rendition is then augmented once (seeded): a gain, a time
shift inside the one-second clip, and background noise (white, pink or brown) at one of several
signal-to-noise ratios, or none. Every random draw is seeded by ``(corpus_seed, voice, rendition,
word)``, so a corpus is bit-identical for a seed, and a corpus of fewer voices holds exactly the
clips of those voices in the full corpus.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from explain._core.io import atomic_write_bytes, atomic_write_json
from explain._core.jsoncodec import loads
from explain.errors import CorruptRunError, MissingExtraError

__all__ = ["WORDS", "SAMPLE_RATE", "CLIP_SAMPLES", "ACCENTS", "VARIANTS", "Voice", "all_voices",
           "Corpus", "load_corpus", "cache_root", "CACHE_ENV"]

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SAMPLE_RATE = 16_000
CLIP_SAMPLES = SAMPLE_RATE           # one second per clip
#: espeak-ng's English accents (the gmw/ voices that need no MBROLA data).
ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd",
           "en-029", "en-us-nyc")
#: espeak-ng voice variants, male and female interleaved.
VARIANTS = ("m1", "f1", "m2", "f2", "m3", "f3", "m4", "f4", "m5", "f5", "m6", "m7")
SPEED_WPM = (120, 200)               # espeak-ng -s range (words per minute)
PITCH = (20, 80)                     # espeak-ng -p range (0-99)
SNR_DB = (None, 30.0, 20.0, 10.0)    # None: a clean clip
NOISES = ("white", "pink", "brown")
GAIN_DB = (-6.0, 6.0)
CACHE_ENV = "DEEPSCOPE_CACHE"
_FORMAT = 1                          # bump when the synthesis changes: a new cache key
_BREAK_MS = 600                      # pause between the words of a rendition
_GAP_S = 0.3                         # a silence at least this long separates two words
_SILENCE = 8                         # |int16 sample| at or below this is silence
_TOOLS = ("espeak-ng", "sox")


@dataclass(frozen=True)
class Voice:
    """An espeak-ng accent plus a variant; ``name`` is what ``espeak-ng -v`` takes."""

    accent: str
    variant: str

    @property
    def name(self) -> str:
        return f"{self.accent}+{self.variant}"

    @property
    def gender(self) -> str:
        return "female" if self.variant.startswith("f") else "male"


def all_voices() -> tuple[Voice, ...]:
    """Every accent x variant pair, ordered along diagonals so that any prefix mixes accents,
    variants and both genders (the first 8 voices use 8 accents and 8 variants)."""
    na, nv = len(ACCENTS), len(VARIANTS)
    pairs = sorted(((v - a) % nv, a, v) for a in range(na) for v in range(nv))
    return tuple(Voice(ACCENTS[a], VARIANTS[v]) for _, a, v in pairs)


@dataclass(frozen=True)
class Corpus:
    """The synthesised clips: ``waveforms`` int16 ``[N, CLIP_SAMPLES]`` and per-clip arrays."""

    waveforms: np.ndarray            # [N, samples] int16
    labels: np.ndarray               # [N] int64, index into WORDS
    voice: np.ndarray                # [N] int64, index into ``voices``
    voices: tuple[Voice, ...]
    meta: dict[str, Any]             # options, espeak-ng version, synthesis seconds
    folder: Path | None = None       # its cache folder (derived features are cached there too)


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir``, else ``$DEEPSCOPE_CACHE``, else ``$XDG_CACHE_HOME/deepscope``
    (``~/.cache/deepscope`` when XDG_CACHE_HOME is unset)."""
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "deepscope"


def _check_tools() -> None:
    missing = [t for t in _TOOLS if shutil.which(t) is None]
    if missing:
        raise MissingExtraError(
            f"The spoken-digits data set synthesises its clips with espeak-ng and sox; "
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed "
            f"(not on PATH). Install the Debian packages with `sudo apt-get install espeak-ng "
            f"sox` (scripts/setup.sh does), or load a corpus already in the cache.")


def _run(cmd: list[str], data: bytes | None = None) -> bytes:
    done = subprocess.run(cmd, input=data, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd[:4])} ...` failed with exit code {done.returncode}: "
                           f"{done.stderr.decode(errors='replace').strip()[:300]}")
    return done.stdout


def _render(voice: Voice, speed: int, pitch: int) -> list[np.ndarray]:
    """The ten words said by ``voice`` in one espeak-ng call, resampled by sox, cut at breaks."""
    ssml = "<speak>" + "".join(f'{w}<break time="{_BREAK_MS}ms"/>' for w in WORDS) + "</speak>"
    wav = _run(["espeak-ng", "-m", "-v", voice.name, "-s", str(speed), "-p", str(pitch),
                "--stdout", ssml])
    # -D: no dither and -R: repeatable, so the resampled samples are deterministic
    raw = _run(["sox", "-D", "-R", "-t", "wav", "-", "-t", "raw", "-r", str(SAMPLE_RATE),
                "-e", "signed-integer", "-b", "16", "-c", "1", "-"], wav)
    x = np.frombuffer(raw, dtype="<i2")
    loud = np.flatnonzero(np.abs(x.astype(np.int32)) > _SILENCE)
    if loud.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(loud) > _GAP_S * SAMPLE_RATE)
    starts, ends = np.r_[loud[0], loud[cuts + 1]], np.r_[loud[cuts], loud[-1]] + 1
    return [x[s:e].astype(np.float32) / 32768.0 for s, e in zip(starts, ends)]


def _noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-power noise: white, pink (1/f power) or brown (1/f^2 power)."""
    white = rng.standard_normal(n)
    if kind != "white":
        spec = np.fft.rfft(white)
        f = np.fft.rfftfreq(n)
        f[0] = f[1]
        spec /= f ** (0.5 if kind == "pink" else 1.0)
        white = np.fft.irfft(spec, n)
    return white / (np.sqrt(np.mean(white ** 2)) + 1e-12)


def _augment(word: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """Place ``word`` at a random offset in a one-second clip, apply gain and noise -> int16."""
    word = word[:CLIP_SAMPLES] / (np.abs(word).max() + 1e-12) * 0.5   # peak at -6 dBFS
    gain_db = float(rng.uniform(*GAIN_DB))
    shift = int(rng.integers(0, CLIP_SAMPLES - len(word) + 1))
    clip = np.zeros(CLIP_SAMPLES)
    clip[shift:shift + len(word)] = word * 10 ** (gain_db / 20)
    snr = SNR_DB[int(rng.integers(len(SNR_DB)))]
    kind = NOISES[int(rng.integers(len(NOISES)))]
    if snr is not None:
        power = float(np.mean(clip[shift:shift + len(word)] ** 2))
        clip += _noise(kind, CLIP_SAMPLES, rng) * np.sqrt(power / 10 ** (snr / 10))
    pcm = np.round(np.clip(clip, -1.0, 32767 / 32768) * 32768).astype(np.int16)
    return pcm, {"gain_db": gain_db, "shift": shift, "snr_db": snr,
                 "noise": kind if snr is not None else None}


def _rendition_job(args: tuple[int, Voice, int, int]) -> list[tuple[int, np.ndarray, dict]]:
    """Synthesise and augment the ten clips of one rendition."""
    corpus_seed, voice, vid, r = args
    rng = np.random.default_rng([corpus_seed, vid, r])
    speed, pitch = int(rng.integers(SPEED_WPM[0], SPEED_WPM[1] + 1)), \
        int(rng.integers(PITCH[0], PITCH[1] + 1))
    words = _render(voice, speed, pitch)
    if len(words) != len(WORDS):
        raise RuntimeError(
            f"espeak-ng voice {voice.name!r} (speed {speed}, pitch {pitch}) gave {len(words)} "
            f"word segments instead of {len(WORDS)}; the corpus cannot be labelled.")
    out = []
    for k, w in enumerate(words):
        pcm, aug = _augment(w, np.random.default_rng([corpus_seed, vid, r, k]))
        out.append((k, pcm, {"speed": speed, "pitch": pitch, "samples": int(min(len(w),
                   CLIP_SAMPLES)), **aug}))
    return out


def _espeak_version() -> str:
    try:
        return _run(["espeak-ng", "--version"]).decode().strip()
    except (OSError, RuntimeError):  # pragma: no cover
        return "unknown"


def _synthesise(voices: tuple[Voice, ...], renditions: int, corpus_seed: int, workers: int,
                progress: bool) -> Corpus:
    from tqdm.auto import tqdm

    index = {v: i for i, v in enumerate(all_voices())}
    jobs = [(corpus_seed, v, index[v], r) for v in voices for r in range(renditions)]
    t0, cpu0 = time.perf_counter(), os.times()
    with ThreadPoolExecutor(max_workers=workers) as pool, \
            tqdm(total=len(jobs) * len(WORDS), desc="synthesise spoken-digits", unit="clip",
                 disable=not progress) as bar:
        results = []
        for res in pool.map(_rendition_job, jobs):
            results.append(res)
            bar.update(len(res))
    cpu1 = os.times()
    rows = [(j, k, pcm, aug) for j, res in enumerate(results) for k, pcm, aug in res]
    clip_voice = np.array([voices.index(jobs[j][1]) for j, *_ in rows], dtype=np.int64)
    meta = {"format": _FORMAT, "voices": [v.name for v in voices], "renditions": renditions,
            "corpus_seed": corpus_seed, "sample_rate": SAMPLE_RATE, "words": list(WORDS),
            "espeak_ng": _espeak_version(), "clips": [aug for *_, aug in rows],
            "synthesis_seconds": round(time.perf_counter() - t0, 3),
            "synthesis_cpu_seconds": round(sum(cpu1[:4]) - sum(cpu0[:4]), 3)}
    return Corpus(np.stack([pcm for *_, pcm, _ in rows]),
                  np.array([k for _, k, *_ in rows], dtype=np.int64), clip_voice, voices, meta)


def _key(voices: tuple[Voice, ...], renditions: int, corpus_seed: int) -> str:
    text = f"{_FORMAT}|{corpus_seed}|{renditions}|{SAMPLE_RATE}|" + ",".join(v.name for v in voices)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _write(folder: Path, corpus: Corpus) -> None:
    buf = io.BytesIO()
    np.savez(buf, waveforms=corpus.waveforms, labels=corpus.labels, voice=corpus.voice)
    atomic_write_bytes(folder / "clips.npz", buf.getvalue())
    atomic_write_json(folder / "meta.json", corpus.meta)   # written last: marks a complete cache


def _read(folder: Path, voices: tuple[Voice, ...]) -> Corpus | None:
    """The cached corpus, or None (with a warning) when the cache is unreadable."""
    try:
        meta = loads((folder / "meta.json").read_bytes(), what=f"{folder / 'meta.json'}")
        with np.load(folder / "clips.npz", allow_pickle=False) as z:
            fields = {k: z[k] for k in ("waveforms", "labels", "voice")}
    except (OSError, ValueError, KeyError, CorruptRunError) as exc:
        warnings.warn(f"The spoken-digits cache in {folder} is unreadable ({exc}); "
                      f"synthesising it anew.", RuntimeWarning, stacklevel=3)
        return None
    return Corpus(fields["waveforms"], fields["labels"].astype(np.int64),
                  fields["voice"].astype(np.int64), voices, meta, folder)


def load_corpus(voices: tuple[Voice, ...], renditions: int, corpus_seed: int, *,
                cache_dir: str | os.PathLike | None, workers: int, progress: bool) -> Corpus:
    """The corpus from the cache, or synthesised (then cached) when it is not there yet."""
    folder = cache_root(cache_dir) / f"spoken-digits-{_key(voices, renditions, corpus_seed)}"
    if (folder / "meta.json").is_file():
        cached = _read(folder, voices)
        if cached is not None:
            return cached
    _check_tools()
    corpus = _synthesise(voices, renditions, corpus_seed, workers, progress)
    for derived in folder.glob("logmel-*.npy"):  # features of clips that are being replaced
        derived.unlink(missing_ok=True)
    _write(folder, corpus)
    return replace(corpus, folder=folder)
