"""Audio frames ``[frames, mels]`` (a GRU over log-mel frames) get the length-keeping baseline of
sequences, in explain.attribute and in explain.evaluate; spectrograms ``[1, mels, frames]``
keep the zero baseline."""

from __future__ import annotations

import torch

import explain
import zoo
from explain.card import Modality
from explain.quality._common import default_baseline, real_mask


def _gru():
    torch.manual_seed(0)
    return zoo.create_model("rnn", input_shape=(101, 40), num_classes=10, modality="audio",
                            cell="gru", hidden=16, pooling="mean").eval()


def _frames() -> torch.Tensor:
    x = torch.randn(3, 101, 40, generator=torch.Generator().manual_seed(1))
    x[2, 60:] = 0                                   # a clip padded after 60 frames
    return x


def test_a_gru_on_audio_frames_is_attributed_from_a_baseline_that_keeps_the_length():
    # Arrange
    model, x = _gru(), _frames()
    # Act
    a = explain.attribute(model, x, method="integrated_gradients", n_steps=64)
    zero = explain.attribute(model, x, method="integrated_gradients", n_steps=64,
                             baselines=torch.zeros_like(x))
    # Assert: 1e-6 in every real frame, 0 in the padding; IG's completeness holds with it
    assert model.card.modality is Modality.AUDIO
    expected = torch.full_like(x, 1e-6)
    expected[2, 60:] = 0
    assert torch.equal(a.baselines, expected)
    assert float(a.convergence_delta.abs().max()) < 1e-4
    assert torch.all(a.values[2, 60:] == 0)
    # an all-padding baseline is a one-frame clip to the packed GRU: completeness breaks
    assert float(zero.convergence_delta.abs().min()) > 0.04


def test_a_spectrogram_cnn_keeps_the_zero_baseline():
    # Arrange
    torch.manual_seed(0)
    model = zoo.create_model("cnn", input_shape=(1, 40, 101), num_classes=10, modality="audio",
                             channels=[4], hidden=0).eval()
    x = torch.randn(2, 1, 40, 101)
    # Act
    a = explain.attribute(model, x, method="integrated_gradients", n_steps=8)
    # Assert
    assert model.card.modality is Modality.AUDIO and torch.equal(a.baselines, torch.zeros_like(x))


def test_trust_metrics_use_the_same_baseline_and_padding_mask_for_audio_frames():
    # Arrange
    x = _frames()
    spectrogram = torch.randn(2, 1, 40, 101)
    # Act
    base, mask = default_baseline(x, Modality.AUDIO), real_mask(x, Modality.AUDIO)
    # Assert
    assert torch.equal(base, default_baseline(x, Modality.SEQUENCE))
    assert int(mask[2].any(-1).sum()) == 60 and bool(mask[:2].all())
    assert torch.equal(default_baseline(spectrogram, Modality.AUDIO), torch.zeros_like(spectrogram))
    assert bool(real_mask(spectrogram, Modality.AUDIO).all())
