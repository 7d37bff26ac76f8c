"""Figures of sounds and their explanations: the waveform, the attribution over the log-mel
spectrogram (time x mel heatmap drawn over the spectrogram), and the attribution summed over
the mel bands (which part of the word mattered, as a curve over time).

Spectrogram inputs come in the two layouts of :class:`explain.Modality` ``AUDIO``: ``[1, mels,
frames]`` for convolutional models and ``[frames, mels]`` for recurrent ones;
:func:`time_mel` turns either into ``[mels, frames]``. Time is in seconds when the frame hop is
known (``frame_seconds``; :func:`frame_seconds` derives it from the clip), else in frames.

Examples
--------
>>> import numpy as np
>>> spec, attr = np.zeros((1, 40, 101)), np.ones((1, 40, 101))
>>> fig = attribution_over_time(attr, frame_seconds=0.01)
>>> len(fig.data[0].x), float(fig.data[0].y[0]), fig.layout.xaxis.title.text
(101, 40.0, 'time (s)')
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explain.errors import InvalidInputError
from explain.figures._style import (
    DIVERGING_OVERLAY,
    GRAY,
    apply_layout,
    color_for,
    escape,
    symmetric_limit,
)

__all__ = ["time_mel", "frame_seconds", "waveform", "spectrogram_attribution",
           "attribution_over_time", "audio_sample", "WAVEFORM_POINTS"]

#: A waveform longer than this is drawn as its min/max envelope over this many bins.
WAVEFORM_POINTS = 2000


def _np(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=float)


def time_mel(values: Any) -> np.ndarray:
    """A spectrogram-shaped array as ``[mels, frames]``: ``[C, mels, frames]`` is summed over
    its channels, ``[frames, mels]`` (the recurrent layout) is transposed.

    Examples
    --------
    >>> time_mel(np.zeros((1, 40, 101))).shape, time_mel(np.zeros((101, 40))).shape
    ((40, 101), (40, 101))
    """
    v = _np(values)
    if v.ndim == 3:
        return v.sum(0)
    if v.ndim == 2:
        return v.T
    raise InvalidInputError(
        f"Audio inputs and attributions must be [channels, mels, frames] (spectrogram) or "
        f"[frames, mels] (frames). Got shape {v.shape} instead.")


def frame_seconds(n_samples: int, sample_rate: int, n_frames: int) -> float | None:
    """Seconds between two spectrogram frames of a clip of ``n_samples`` at ``sample_rate``
    with ``n_frames`` centred frames (``frames = 1 + samples // hop``); ``None`` for one frame.

    Examples
    --------
    >>> frame_seconds(16000, 16000, 101)
    0.01
    """
    if n_frames < 2 or sample_rate <= 0:
        return None
    return round(n_samples / (n_frames - 1)) / sample_rate


def _times(n: int, step: float | None) -> tuple[np.ndarray, str]:
    return (np.arange(n) * step, "time (s)") if step else (np.arange(n, dtype=float), "frame")


def _envelope(samples: np.ndarray, sample_rate: int,
              points: int) -> tuple[np.ndarray, np.ndarray]:
    """(time, amplitude) of the clip, or of its min/max envelope in ``points // 2`` bins."""
    t = np.arange(len(samples)) / sample_rate
    if len(samples) <= points:
        return t, samples
    bins = np.array_split(np.arange(len(samples)), points // 2)
    times = np.repeat([t[b[0]] for b in bins], 2)
    amps = np.ravel([(samples[b].min(), samples[b].max()) for b in bins])
    return times, amps


def _waveform_trace(samples: Any, sample_rate: int) -> go.Scatter:
    a = _np(samples).reshape(-1)
    t, y = _envelope(a, int(sample_rate), WAVEFORM_POINTS)
    return go.Scatter(x=t, y=y, mode="lines", line={"color": color_for(0), "width": 1},
                      name="waveform", hovertemplate="%{x:.3f} s: %{y:.3f}<extra></extra>")


def waveform(samples: Any, sample_rate: int, *, title: str | None = None) -> go.Figure:
    """The clip's amplitude over time (floats in [-1, 1]; long clips as their envelope)."""
    fig = go.Figure(_waveform_trace(samples, sample_rate))
    fig.update_xaxes(title_text="time (s)")
    fig.update_yaxes(title_text="amplitude", range=[-1.05, 1.05])
    return apply_layout(fig, title or "Waveform", height=220, showlegend=False)


def _overlay_traces(spectrogram: Any, values: Any,
                    step: float | None) -> tuple[go.Heatmap, go.Heatmap, str]:
    spec, attr = time_mel(spectrogram), time_mel(values)
    if spec.shape != attr.shape:
        raise InvalidInputError(
            f"The attribution [mels, frames] {attr.shape} does not match the spectrogram "
            f"{spec.shape}; pass the values computed for this input.")
    t, unit = _times(spec.shape[1], step)
    mels = np.arange(spec.shape[0])
    lim = symmetric_limit(attr)
    back = go.Heatmap(z=spec, x=t, y=mels, colorscale=GRAY, showscale=False, hoverinfo="skip",
                      name="spectrogram")
    over = go.Heatmap(z=attr, x=t, y=mels, colorscale=DIVERGING_OVERLAY, zmid=0.0, zmin=-lim,
                      zmax=lim, opacity=0.85, name="attribution",
                      colorbar={"title": {"text": "attribution"}, "len": 0.5},
                      hovertemplate="%{x}, mel %{y}: %{z:.4f}<extra></extra>")
    return back, over, unit


def _what(method: str | None, class_name: str | None) -> str:
    head = f"{escape(method)} attribution" if method else "Attribution"
    return head + (f" for '{escape(class_name)}'" if class_name is not None else "")


def spectrogram_attribution(spectrogram: Any, values: Any, *, frame_seconds: float | None = None,
                            method: str | None = None, class_name: str | None = None,
                            title: str | None = None) -> go.Figure:
    """The log-mel spectrogram (grey) with the attribution on top as a translucent diverging
    heatmap (red for the class, blue against; it fades to transparent near zero): x is time,
    y the mel band (low frequencies at the bottom).

    ``spectrogram`` and ``values``: ``[1, mels, frames]`` or ``[frames, mels]``.
    """
    back, over, unit = _overlay_traces(spectrogram, values, frame_seconds)
    fig = go.Figure([back, over])
    fig.update_xaxes(title_text=unit, showgrid=False)
    fig.update_yaxes(title_text="mel band", showgrid=False)
    return apply_layout(fig, title or f"{_what(method, class_name)} over the spectrogram",
                        height=300)


def _time_trace(values: Any, step: float | None) -> tuple[go.Scatter, str]:
    curve = time_mel(values).sum(0)                                      # [frames]
    t, unit = _times(len(curve), step)
    return go.Scatter(x=t, y=curve, mode="lines", fill="tozeroy", name="sum over mel bands",
                      line={"color": color_for(1)},
                      hovertemplate="%{x}: %{y:.4f}<extra></extra>"), unit


def attribution_over_time(values: Any, *, frame_seconds: float | None = None,
                          method: str | None = None, class_name: str | None = None,
                          title: str | None = None) -> go.Figure:
    """The attribution summed over the mel bands, per frame: which part of the word drove the
    prediction (above zero: for the class, below: against)."""
    trace, unit = _time_trace(values, frame_seconds)
    fig = go.Figure(trace)
    fig.update_xaxes(title_text=unit)
    fig.update_yaxes(title_text="attribution (sum over mels)", zeroline=True)
    return apply_layout(fig, title or f"{_what(method, class_name)} over time", height=220,
                        showlegend=False)


def audio_sample(spectrogram: Any, values: Any, *, samples: Any = None,
                 sample_rate: int | None = None, method: str | None = None,
                 class_name: str | None = None, title: str | None = None) -> go.Figure:
    """One explained clip on a shared time axis: its waveform (when ``samples`` and
    ``sample_rate`` are given), the attribution over its spectrogram, and the attribution
    summed over the mel bands.

    Examples
    --------
    >>> fig = audio_sample(np.zeros((101, 40)), np.ones((101, 40)), samples=np.zeros(16000),
    ...                    sample_rate=16000)
    >>> [t.name for t in fig.data], fig.layout.xaxis3.title.text
    (['waveform', 'spectrogram', 'attribution', 'sum over mel bands'], 'time (s)')
    """
    frames = time_mel(values).shape[1]
    clip = None if samples is None or sample_rate is None else _np(samples).reshape(-1)
    rate = int(sample_rate or 0)
    step = None if clip is None else frame_seconds(len(clip), rate, frames)
    n_rows = 2 + (clip is not None)
    fig = make_subplots(rows=n_rows, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        row_heights=[0.25, 0.5, 0.25][3 - n_rows:])
    if clip is not None:
        fig.add_trace(_waveform_trace(clip, rate), row=1, col=1)
        fig.update_yaxes(title_text="amplitude", range=[-1.05, 1.05], row=1, col=1)
    back, over, unit = _overlay_traces(spectrogram, values, step)
    over.colorbar.update(y=0.5, len=0.45)
    r = n_rows - 1
    fig.add_trace(back, row=r, col=1)
    fig.add_trace(over, row=r, col=1)
    fig.update_yaxes(title_text="mel band", showgrid=False, row=r, col=1)
    fig.add_trace(_time_trace(values, step)[0], row=r + 1, col=1)
    fig.update_yaxes(title_text="sum over mels", row=r + 1, col=1)
    fig.update_xaxes(title_text=unit, row=r + 1, col=1)
    return apply_layout(fig, title or _what(method, class_name), height=200 + 130 * n_rows,
                        showlegend=False)
