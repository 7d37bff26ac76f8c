"""Seeded noise of smoothgrad and gradient_shap is drawn per sample (issue #14): a sample's
values depend only on the sample, its baseline and target, and the seed, not on the batch
size, the chunking, its position or its batch-mates; smoothgrad's noise scale is the sample's
own range; padding gets no noise and exactly 0; with the same draws one sample's values are
captum's own."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import GradientShap, NoiseTunnel, Saliency

from explain.attribution import attribute
from explain.attribution.methods._gradients import noise_draws, sample_seeds
from explain.card import ModelCard

from ._rows import CountRows

NOISY = {"smoothgrad": {"nt_samples": 8}, "gradient_shap": {"n_samples": 8, "stdevs": 0.2}}


@pytest.fixture
def tanh_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(),
                               torch.nn.Linear(16, 3)).eval()


@pytest.fixture
def batch():
    return torch.randn(10, 5, generator=torch.Generator().manual_seed(1))


class _TanhOfMean(torch.nn.Module):
    """A non-linear sequence model: tanh of the mean over the valid frames (the length read
    from trailing all-zero frames, as a packed RNN reads it); records each row's length."""

    def __init__(self, frames: int = 6) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)
        self.seen: list[int] = []
        self.card = ModelCard(name="tanh-mean", modality="sequence", input_shape=(frames, 2),
                              input_dtype="float32", num_classes=2, class_names=("a", "b"))

    def forward(self, x):
        idx = torch.arange(x.shape[1])
        length = torch.where((x != 0).any(-1), idx + 1, torch.zeros_like(idx)).amax(1)
        self.seen += length.tolist()
        return torch.tanh(self.lin(x.sum(1) / length.clamp(min=1)[:, None]))


@pytest.mark.parametrize("method", sorted(NOISY))
def test_seeded_values_do_not_depend_on_the_batch_size_or_the_plan(tanh_net, batch, method):
    # Arrange: batch sizes 1, 3, 7 cut the 10 samples into different chunks and passes; the
    # first call without one probes a new shape (its own first chunk), the second reuses the plan
    sizes = (1, 3, 7, None, None)

    # Act
    runs = [attribute(tanh_net, batch, target=1, method=method, batch_size=b, seed=3,
                      **NOISY[method]).values for b in sizes]

    # Assert: the same values up to the float rounding of passes of different sizes
    for size, values in zip(sizes[1:], runs[1:]):
        assert torch.allclose(values, runs[0], rtol=1e-5, atol=1e-7), size
    assert not torch.equal(runs[0][0], runs[0][1])


@pytest.mark.parametrize("method", sorted(NOISY))
def test_a_sample_gets_the_same_values_alone_and_at_any_position(tanh_net, batch, method):
    # Arrange: sample 4 alone, and the batch reversed (sample 4 at position 5)
    options = {"target": 1, "method": method, "seed": 3, **NOISY[method]}

    # Act
    inside = attribute(tanh_net, batch, **options).values
    alone = attribute(tanh_net, batch[4:5], **options).values
    reversed_ = attribute(tanh_net, batch.flip(0), **options).values

    # Assert: the seed is derived from the sample's values, not its index
    assert torch.allclose(alone[0], inside[4], rtol=1e-5, atol=1e-7)
    assert torch.allclose(reversed_.flip(0), inside, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("method", sorted(NOISY))
def test_equal_seeds_repeat_and_different_seeds_differ(tanh_net, batch, method):
    # Act
    first, again, other = (attribute(tanh_net, batch, target=1, method=method, seed=s,
                                     **NOISY[method]).values for s in (3, 3, 4))

    # Assert
    assert torch.equal(first, again)
    assert not torch.allclose(first, other, rtol=1e-3, atol=1e-5)


def test_smoothgrad_noise_scale_is_each_samples_own_range(tanh_net, batch):
    # Arrange: sample 1 scaled by 100 next to sample 0 (the chunk's range was ~100x sample 0's)
    pair = torch.stack([batch[0], batch[1] * 100])

    # Act
    together = attribute(tanh_net, pair, target=0, method="smoothgrad", seed=2).values
    alone = attribute(tanh_net, batch[:1], target=0, method="smoothgrad", seed=2).values

    # Assert
    assert torch.allclose(together[0], alone[0], rtol=1e-5, atol=1e-7)


def test_smoothgrad_noise_has_the_spread_times_the_samples_range():
    # Arrange: a model that records the noisy copies it runs; ranges 2 and 200
    seen: list[torch.Tensor] = []

    class Record(torch.nn.Module):
        def forward(self, x):
            seen.append(x.detach().clone())
            return x.sum(1, keepdim=True) * torch.ones(1, 2)

    x = torch.linspace(-1.0, 1.0, 64).repeat(2, 1)
    x[1] *= 100

    # Act
    attribute(Record().eval(), x, target=0, method="smoothgrad", nt_samples=64,
              stdev_spread=0.1, batch_size=256)

    # Assert: noise std 0.1 x 2 = 0.2 and 0.1 x 200 = 20 (64 x 64 draws each: within 5%)
    copies = torch.cat(seen[-1:])
    noise = copies.view(2, 64, 64) - x[:, None, :]
    assert noise[0].std().item() == pytest.approx(0.2, rel=0.05)
    assert noise[1].std().item() == pytest.approx(20.0, rel=0.05)
    assert abs(noise[0].mean().item()) < 0.02


def test_noise_draws_are_gaussian_and_the_points_uniform():
    # Arrange
    x = torch.zeros(3, 100)

    # Act
    noise, alphas = noise_draws(x, 500, [1.0, 2.0, 0.5], sample_seeds(0, torch.eye(3)),
                                alphas=True)

    # Assert: per sample std = its stdev (50,000 draws); alphas U[0, 1): mean 1/2, var 1/12
    per = noise.view(3, -1)
    assert per.std(1).tolist() == pytest.approx([1.0, 2.0, 0.5], rel=0.02)
    assert per.mean(1).abs().max().item() < 0.03
    assert alphas is not None and alphas.shape == (1500,)
    assert 0.0 <= alphas.min().item() and alphas.max().item() < 1.0
    assert alphas.mean().item() == pytest.approx(0.5, abs=0.02)
    assert alphas.var().item() == pytest.approx(1 / 12, rel=0.05)


def test_equal_samples_get_equal_seeds_and_others_and_other_seeds_differ():
    # Arrange
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0]])

    # Act
    seeds, other = sample_seeds(0, x), sample_seeds(1, x)

    # Assert
    assert seeds[0] == seeds[2] != seeds[1]
    assert not set(seeds) & set(other)


@pytest.mark.parametrize("method", sorted(NOISY))
def test_padding_gets_no_noise_and_exactly_zero_and_its_length_does_not_matter(method):
    # Arrange: lengths 4 and 2 of 6 frames; sample 1 alone needs no padding at all (the same
    # model, with a card of 2 frames)
    model = _TanhOfMean().eval()
    unpadded = _TanhOfMean(frames=2).eval()
    unpadded.load_state_dict(model.state_dict())
    x = torch.zeros(2, 6, 2)
    x[0, :4] = torch.tensor([[0.5, -1.0], [1.0, 0.2], [-0.3, 0.8], [0.9, 0.4]])
    x[1, :2] = torch.tensor([[0.7, -0.2], [0.1, 0.6]])
    options = {"target": 1, "method": method, "seed": 5, **NOISY[method]}

    # Act
    both = attribute(model, x, **options).values
    rows = list(model.seen[-16:])
    alone = attribute(unpadded, x[1:, :2], **options).values

    # Assert: every copy ran at its sample's length, padding is exactly 0, and sample 1's
    # values are those it gets unpadded (its noise is drawn for its 2 frames only)
    assert sorted(set(rows)) == [2, 4] and rows.count(4) == rows.count(2) == 8
    assert torch.equal(both[0, 4:], torch.zeros(2, 2))
    assert torch.equal(both[1, 2:], torch.zeros(4, 2))
    assert bool((both[0, :4] != 0).all()) and bool((both[1, :2] != 0).all())
    assert torch.allclose(both[1, :2], alone[0], rtol=1e-5, atol=1e-7)


def test_gradient_shap_is_complete_on_average(tanh_net):
    # Arrange: no noise; expected gradients integrate the gradient along x - b, so the mean
    # over many points of sum(attributions) is f(x) - f(b) (Monte Carlo error ~ 1/sqrt(n))
    x = torch.randn(6, 5, generator=torch.Generator().manual_seed(2)) * 2
    b = torch.randn(6, 5, generator=torch.Generator().manual_seed(3)) * 0.5
    with torch.no_grad():
        gap = tanh_net(x)[:, 1] - tanh_net(b)[:, 1]           # from -0.86 to 0.56

    # Act
    a = attribute(tanh_net, x, target=1, method="gradient_shap", baselines=b, n_samples=4096)

    # Assert
    assert torch.allclose(a.values.sum(1), gap, atol=0.03)


def test_gradient_shap_equals_captums_on_one_sample_given_the_same_draws(tanh_net, batch,
                                                                         monkeypatch):
    # Arrange: captum draws the noise with torch's global generator (seeded as this sample's
    # own is) and the points with np.random.uniform (patched to this sample's points)
    x, b, k = batch[2:3], batch[7:8] * 0.3, 8
    seed = sample_seeds(5, x)[0]
    gen = torch.Generator().manual_seed(seed)
    torch.randn((k, 5), generator=gen)
    points = torch.rand(k, generator=gen, dtype=torch.float64).numpy()
    monkeypatch.setattr(np.random, "uniform", lambda low, high, size: points)

    # Act
    ours = attribute(tanh_net, x, target=1, method="gradient_shap", baselines=b, n_samples=k,
                     stdevs=0.2, seed=5).values
    torch.manual_seed(seed)
    theirs = GradientShap(tanh_net).attribute(x, baselines=b, n_samples=k, stdevs=0.2,
                                              target=1)

    # Assert
    assert torch.equal(ours, theirs)


def test_smoothgrad_equals_captums_noise_tunnel_on_one_sample_given_the_same_noise(tanh_net,
                                                                                  batch):
    # Arrange
    x, k = batch[2:3], 8
    stdev = 0.15 * float(x.max() - x.min())

    # Act
    ours = attribute(tanh_net, x, target=1, method="smoothgrad", nt_samples=k, seed=5).values
    torch.manual_seed(sample_seeds(5, x)[0])
    theirs = NoiseTunnel(Saliency(tanh_net)).attribute(x, nt_type="smoothgrad", nt_samples=k,
                                                       stdevs=stdev, target=1)

    # Assert
    assert torch.equal(ours, theirs)


def _Rows() -> CountRows:
    """A small model (6 features, 2 classes) that records the rows of every forward pass."""
    return CountRows(torch.nn.Sequential(torch.nn.Linear(6, 2), torch.nn.Tanh()))


@pytest.mark.parametrize(("batch_size", "passes"), [(8, [8, 8, 4]), (3, [3] * 6 + [2])])
@pytest.mark.parametrize("method", sorted(NOISY))
def test_noisy_copies_run_in_the_planned_rows_per_pass(method, batch_size, passes):
    # Arrange: 5 samples x 4 copies, one chunk (their copies fit copies_chunk's buffer): its
    # 20 copies in passes of 8 rows (4 for the last) or of 3 (2 for the last), across samples
    torch.manual_seed(0)
    model = _Rows().eval()
    x = torch.randn(5, 6)
    copies = {"smoothgrad": {"nt_samples": 4}, "gradient_shap": {"n_samples": 4}}[method]

    # Act
    model.rows.clear()
    attribute(model, x, target=0, method=method, batch_size=batch_size, **copies)

    # Assert: the last passes (before them, preparing the job runs one sample)
    assert model.rows[-len(passes):] == passes and sum(model.rows) == 20 + 1
