"""Sound helpers several stages share: the one WAV writer and reader.

An audit of an audio model keeps each explained clip as a small 16-bit PCM WAV file (the
report embeds it, the dashboard plays it, figures draw its waveform); the zoo's spoken-digits
bundle writes its clips with the same function. Only the standard library's :mod:`wave` is used.

Examples
--------
>>> import numpy as np
>>> data = wav_bytes(np.array([0.0, 0.5, -0.5, 1.0]), 8000)
>>> samples, rate = read_wav(data)
>>> rate, samples.round(3).tolist()
(8000, [0.0, 0.5, -0.5, 1.0])
"""

from __future__ import annotations

import io
import wave
from typing import Any

import numpy as np

from explain.errors import InvalidInputError

__all__ = ["wav_bytes", "read_wav", "as_float_samples"]


def as_float_samples(samples: Any) -> np.ndarray:
    """One clip as float64 in [-1, 1]: int16 PCM is divided by 32768, floats are kept.

    Raises :class:`explain.InvalidInputError` for a clip that is not 1-D or not finite.
    """
    a = samples.detach().cpu().numpy() if hasattr(samples, "detach") else np.asarray(samples)
    if a.ndim != 1:
        raise InvalidInputError(f"A sound clip must be 1-D [samples]. Got shape {a.shape} "
                                "instead; pass one mono clip per sample.")
    if a.dtype == np.int16:
        return a.astype(np.float64) / 32768.0
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise InvalidInputError(f"A sound clip must be finite. Got {int((~np.isfinite(a)).sum())}"
                                " NaN/inf samples instead.")
    return a


def wav_bytes(samples: Any, sample_rate: int) -> bytes:
    """A mono 16-bit PCM WAV file of ``samples`` (floats in [-1, 1], clipped, or int16).

    Examples
    --------
    >>> data = wav_bytes(np.zeros(160, dtype=np.float32), 16000)
    >>> data[:4], data[8:12], len(data)
    (b'RIFF', b'WAVE', 364)
    """
    a = as_float_samples(samples)
    pcm = np.round(np.clip(a, -1.0, 32767 / 32768) * 32768)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.astype("<i2").tobytes())
    return buf.getvalue()


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """``(samples float32 in [-1, 1], sample_rate)`` of a mono 16-bit PCM WAV file
    (what :func:`wav_bytes` writes); other files raise :class:`explain.InvalidInputError`."""
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            if w.getnchannels() != 1 or w.getsampwidth() != 2:
                raise InvalidInputError(
                    f"A clip must be a mono 16-bit PCM WAV file. Got {w.getnchannels()} "
                    f"channel(s) of {8 * w.getsampwidth()}-bit samples instead.")
            rate, frames = w.getframerate(), w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise InvalidInputError(f"A clip must be a WAV file. Got bytes wave cannot read "
                                f"({exc}).") from exc
    return np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0, int(rate)
