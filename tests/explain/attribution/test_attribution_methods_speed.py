"""The work each method's passes do matches the job: noisy or interpolated copies of a padded
sequence keep its length (a packed RNN would otherwise run, and attribute, padding frames),
each sample is paired with its own baseline, and a seed fixes every random draw."""

from __future__ import annotations

import pytest
import torch

from explain.attribution import attribute
from explain.card import ModelCard
from tests.explain.attribution.test_attribution import _LengthMean

from ._rows import CountRows


@pytest.fixture
def length_mean():
    """f(x) = w * sum(x) / length, the length read from trailing all-zero frames."""
    model = _LengthMean().eval()
    model.card = ModelCard(name="len-mean", modality="sequence", input_shape=(6, 2),
                           input_dtype="float32", num_classes=2, class_names=("a", "b"))
    return model


@pytest.fixture
def padded():
    x = torch.zeros(2, 6, 2)
    x[0, :4], x[1, :2] = 1.0, 0.5                       # lengths 4 and 2 of 6 frames
    return x


class _Lengths(torch.nn.Module):
    """Records the length of every row it runs (as a packed RNN reads it) and returns x.sum."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []
        self.w = torch.nn.Parameter(torch.tensor([1.0, -1.0]))

    def forward(self, x):
        idx = torch.arange(x.shape[1])
        length = torch.where((x != 0).any(-1), idx + 1, torch.zeros_like(idx)).amax(1)
        self.seen += length.tolist()
        return x.sum((1, 2))[:, None] * self.w


def test_gradient_shap_interpolates_each_sample_towards_its_own_baseline(length_mean, padded):
    # Arrange: the default baseline keeps each length (1e-6 on valid frames, 0 on padding)
    base = torch.zeros_like(padded)
    base[0, :4], base[1, :2] = 1e-6, 1e-6

    # Act
    a = attribute(length_mean, padded, target=1, method="gradient_shap", n_samples=16)

    # Assert: f is linear at a fixed length, so every point between x_i and b_i has gradient
    # w / length_i: values are exactly (x - b) * w / length, 0 on padding. A baseline drawn from
    # the other sample (captum's GradientShap draws from all rows) changes the length.
    expected = torch.zeros_like(padded)
    expected[0, :4] = (1.0 - 1e-6) * -2.0 / 4
    expected[1, :2] = (0.5 - 1e-6) * -2.0 / 2
    assert torch.allclose(a.values, expected, atol=1e-6)
    assert torch.equal(a.baselines, base)


def test_gradient_shap_noise_keeps_the_padding_of_sequences(padded):
    # Arrange
    model = _Lengths().eval()
    model.card = ModelCard(name="lengths", modality="sequence", input_shape=(6, 2),
                           input_dtype="float32", num_classes=2, class_names=("a", "b"))

    # Act
    a = attribute(model, padded, target=0, method="gradient_shap", n_samples=8, stdevs=0.3)

    # Assert: every copy the model ran has its sample's length; padding gets exactly 0
    seen = sorted(set(model.seen[-16:]))
    assert seen == [2, 4]
    assert torch.equal(a.values[0, 4:], torch.zeros(2, 2))
    assert torch.equal(a.values[1, 2:], torch.zeros(4, 2))
    assert bool((a.values[0, :4] != 0).all()) and bool((a.values[1, :2] != 0).all())


def test_gradient_shap_seed_fixes_the_interpolation_points_and_the_noise():
    # Arrange: a non-linear model, so the random points change the values
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(),
                                torch.nn.Linear(8, 3)).eval()
    x = torch.randn(5, 4)

    # Act (each sample draws from the seed and its own values, under any chunking:
    # test_attribution_noise.py)
    def run(seed):
        return attribute(model, x, target=0, method="gradient_shap", stdevs=0.1, seed=seed,
                         batch_size=32).values

    first, again, other = run(3), run(3), run(4)

    # Assert
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def test_the_seed_leaves_the_callers_random_state_alone():
    import numpy as np

    # Arrange
    model = torch.nn.Linear(3, 2).eval()
    torch.manual_seed(11)
    np.random.seed(11)
    want_torch, want_np = torch.rand(1), np.random.uniform()
    torch.manual_seed(11)
    np.random.seed(11)

    # Act
    attribute(model, torch.ones(2, 3), target=0, method="gradient_shap", stdevs=0.1)

    # Assert
    assert torch.equal(torch.rand(1), want_torch)
    assert np.random.uniform() == want_np


def test_occlusion_windows_keep_the_length_of_padded_sequences(padded):
    # Arrange: windows of one frame; the default baseline holds 1e-6 on valid frames
    model = _Lengths().eval()
    model.card = ModelCard(name="lengths", modality="sequence", input_shape=(6, 2),
                           input_dtype="float32", num_classes=2, class_names=("a", "b"))

    # Act
    a = attribute(model, padded, target=0, method="occlusion", sliding_window_shapes=(1, 2),
                  strides=(1, 2))

    # Assert: every occluded copy of sample 0 has length 4, of sample 1 length 2 (an occluded
    # last frame holds the baseline's 1e-6, not 0); windows on padding change nothing
    rows = model.seen[-2 * 7:]                        # 2 samples x (1 + 6 windows)
    assert sorted(set(rows)) == [2, 4]
    assert rows.count(4) == rows.count(2) == 7
    assert torch.equal(a.values[0, 4:], torch.zeros(2, 2))
    assert torch.equal(a.values[1, 2:], torch.zeros(4, 2))


def _Rows() -> CountRows:
    """A small model (6 features, 2 classes) that records the rows of every forward pass."""
    return CountRows(torch.nn.Linear(6, 2))


@pytest.mark.parametrize("method", ["occlusion", "feature_ablation"])
def test_perturbation_passes_hold_the_planned_rows_with_one_unperturbed_pass(method):
    # Arrange: 4 samples x 6 features, one feature per window / group, 8 rows per pass
    torch.manual_seed(0)
    model = _Rows().eval()
    x = torch.randn(4, 6)
    options = ({"sliding_window_shapes": (1,), "strides": (1,)} if method == "occlusion"
               else {})

    # Act
    model.rows.clear()
    a = attribute(model, x, target=0, method=method, batch_size=8, **options)

    # Assert: one unperturbed pass of the 4 samples, then 2 perturbations of each per pass
    # (chunks of 8 // 7 = 1 sample ran 4 one-row passes and 4 six-row passes)
    assert model.rows[-4:] == [4, 8, 8, 8]
    expected = x * model.model.weight[0].detach()           # linear: the exact answer
    assert torch.allclose(a.values, expected, atol=1e-5)
