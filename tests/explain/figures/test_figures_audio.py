"""Audio figures: the waveform, the attribution over the spectrogram, the attribution summed
over the mel bands, and the three on one time axis; both input layouts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explain.errors import InvalidInputError
from explain.figures import audio as au


def _maps():
    g = np.random.default_rng(0)
    spec = g.normal(size=(1, 40, 101))                  # [1, mels, frames]
    attr = g.normal(size=(1, 40, 101))
    return spec, attr


def test_spectrogram_attribution_is_a_time_by_mel_heatmap_over_the_spectrogram():
    # Arrange
    spec, attr = _maps()
    # Act
    fig = au.spectrogram_attribution(spec, attr, frame_seconds=0.01, method="saliency",
                                     class_name="<i>two</i>")
    # Assert: grey spectrogram under a diverging, zero-centred attribution, same cells
    back, over = fig.data
    assert np.asarray(back.z).shape == (40, 101) and np.asarray(over.z).shape == (40, 101)
    np.testing.assert_allclose(np.asarray(back.z), spec[0])
    np.testing.assert_allclose(np.asarray(over.z), attr[0])
    assert back.colorscale[0][1] == "rgb(0, 0, 0)" and over.zmid == 0.0
    assert over.zmax == pytest.approx(np.abs(attr).max()) and over.zmin == -over.zmax
    assert np.asarray(over.x)[[0, 1, -1]].tolist() == pytest.approx([0.0, 0.01, 1.0])
    assert np.asarray(over.y).tolist() == list(range(40))      # mel 0 (low) at the bottom
    assert fig.layout.xaxis.title.text == "time (s)" and fig.layout.yaxis.title.text == "mel band"
    assert fig.layout.title.text == ("saliency attribution for '&lt;i&gt;two&lt;/i&gt;' over "
                                     "the spectrogram")


def test_frames_layout_is_drawn_like_the_spectrogram_it_transposes():
    # Arrange: the recurrent layout [frames, mels] of the same maps
    spec, attr = _maps()
    # Act
    a = au.spectrogram_attribution(spec, attr)
    b = au.spectrogram_attribution(torch.tensor(spec[0].T), torch.tensor(attr[0].T))
    # Assert
    np.testing.assert_allclose(np.asarray(a.data[1].z), np.asarray(b.data[1].z))
    assert a.layout.xaxis.title.text == "frame" and np.asarray(a.data[1].x)[-1] == 100


def test_attribution_over_time_sums_the_mel_bands_of_each_frame():
    # Arrange
    _, attr = _maps()
    # Act
    fig = au.attribution_over_time(attr, frame_seconds=0.01)
    # Assert
    line, = fig.data
    np.testing.assert_allclose(np.asarray(line.y), attr[0].sum(0))
    assert len(line.x) == 101 and line.fill == "tozeroy"
    assert fig.layout.xaxis.title.text == "time (s)"
    assert fig.layout.yaxis.title.text == "attribution (sum over mels)"


def test_waveform_draws_short_clips_exactly_and_long_ones_as_their_envelope():
    # Arrange
    t = np.arange(16000) / 16000
    clip = 0.5 * np.sin(2 * np.pi * 440 * t)
    # Act
    short = au.waveform(clip[:800], 16000)
    long = au.waveform(clip, 16000)
    # Assert
    np.testing.assert_allclose(np.asarray(short.data[0].y), clip[:800])
    assert np.asarray(short.data[0].x)[-1] == pytest.approx(799 / 16000)
    y = np.asarray(long.data[0].y)
    assert len(y) == au.WAVEFORM_POINTS and y.max() == pytest.approx(clip.max())
    assert y.min() == pytest.approx(clip.min())
    assert long.layout.yaxis.range == (-1.05, 1.05)


def test_audio_sample_puts_waveform_spectrogram_and_curve_on_one_time_axis():
    # Arrange
    spec, attr = _maps()
    clip = np.zeros(16000)
    # Act
    fig = au.audio_sample(spec, attr, samples=clip, sample_rate=16000, title="clip")
    without = au.audio_sample(spec, attr)
    # Assert
    assert [t.name for t in fig.data] == ["waveform", "spectrogram", "attribution",
                                          "sum over mel bands"]
    assert [t.yaxis for t in fig.data] == ["y", "y2", "y2", "y3"]
    assert np.asarray(fig.data[2].x)[-1] == pytest.approx(1.0)    # 10 ms hop from the clip
    assert np.asarray(fig.data[0].x)[-1] == pytest.approx(0.999)    # the last of 1000 bins
    assert fig.layout.xaxis3.title.text == "time (s)" and fig.layout.xaxis.matches == "x3"
    assert [t.name for t in without.data] == ["spectrogram", "attribution", "sum over mel bands"]
    assert without.layout.xaxis2.title.text == "frame"


def test_mismatched_maps_and_bad_ranks_are_named():
    with pytest.raises(InvalidInputError, match=r"The attribution \[mels, frames\] \(40, 100\) "
                       r"does not match the spectrogram \(40, 101\)"):
        au.spectrogram_attribution(np.zeros((1, 40, 101)), np.zeros((1, 40, 100)))
    with pytest.raises(InvalidInputError, match=r"Got shape \(4040,\) instead"):
        au.attribution_over_time(np.zeros(4040))
    assert au.frame_seconds(16000, 16000, 1) is None
