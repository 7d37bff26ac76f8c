"""explain.audit on a spectrogram model: explained samples keep their clip (WAV), default
methods, the JSON round trip, and typed errors for waveforms that do not fit the data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import explain
from explain._core.audio import read_wav, wav_bytes
from explain.auditing.explanations import MAX_CLIP_SECONDS, clip_of
from explain.auditing.sections import ExplanationsSection
from explain.errors import DataMismatchError, InvalidInputError
from tests.fixtures.audio import SAMPLE_RATE, spectrogram_cnn

FAST = {"checks": ["non-finite"], "trust_metrics": ("faithfulness",)}


@pytest.fixture(scope="module")
def tone_audit():
    model, data, pcm = spectrogram_cnn()
    report = explain.audit(model, data, samples=2, waveforms=pcm, sample_rate=SAMPLE_RATE, **FAST)
    return report, pcm


def test_each_explained_sample_keeps_its_own_clip_and_spectrogram(tone_audit):
    # Arrange
    report, pcm = tone_audit
    # Act
    sec = report.section(ExplanationsSection)
    # Assert: the clip of the sample's own index, as a 16-bit WAV at the given rate
    assert sec.modality is explain.Modality.AUDIO and len(sec.samples) == 2
    for s in sec.samples:
        assert s.audio == wav_bytes(pcm[s.index], SAMPLE_RATE)
        samples, rate = read_wav(s.audio)
        assert rate == SAMPLE_RATE and np.array_equal(
            np.round(samples * 32768).astype(np.int16), pcm[s.index].numpy())
        assert s.input is not None and tuple(s.input.shape) == (1, 65, 32)


def test_a_spectrogram_cnn_is_explained_with_integrated_gradients_and_grad_cam(tone_audit):
    report, _ = tone_audit
    sec = report.section(ExplanationsSection)
    assert [(m.method, m.used, m.error) for m in sec.methods] == [
        ("integrated_gradients", "integrated_gradients", None), ("grad_cam", "grad_cam", None)]


def test_clips_survive_the_json_round_trip(tone_audit):
    # Arrange
    report, _ = tone_audit
    # Act
    text = report.to_json()
    back = explain.Report.from_dict(json.loads(text))
    # Assert
    entry = json.loads(text)["sections"]["explanations"]
    assert entry["samples"][0]["audio_wav_base64"].startswith("UklGR")      # "RIFF"
    old, new = report.section(ExplanationsSection), back.section(ExplanationsSection)
    assert [s.audio for s in new.samples] == [s.audio for s in old.samples]
    assert new == old


def test_waveforms_without_a_rate_or_with_too_few_clips_are_named():
    model, data, pcm = spectrogram_cnn(epochs=1)
    with pytest.raises(InvalidInputError, match=r"^audit 'waveforms' needs its 'sample_rate' "
                       r"\(samples per second, e.g. sample_rate=16000\). Got none.$"):
        explain.audit(model, data, samples=1, waveforms=pcm, **FAST)
    with pytest.raises(DataMismatchError, match=r"^audit 'waveforms' must hold one clip per data "
                       r"sample \(24\). Got 5 instead; pass the clips of the same samples, in "
                       r"the same order.$"):
        explain.audit(model, data, samples=1, waveforms=pcm[:5], sample_rate=8000, **FAST)


def test_clips_longer_than_the_limit_are_not_kept():
    long = torch.zeros(1, int(MAX_CLIP_SECONDS * 100) + 1)
    assert clip_of(long, 0, 100) is None
    assert clip_of(long[:, :-1], 0, 100) is not None
