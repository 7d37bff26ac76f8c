"""summed_gradients is a drop-in for captum's compute_gradients: same tensors, one backward."""

from __future__ import annotations

import pytest
import torch
from captum import attr
from captum._utils.gradient import compute_gradients
from torch import nn

from explain.attribution.methods._gradients import fast_gradients, summed_gradients


def _model() -> nn.Module:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3))
    m(torch.randn(32, 6))  # move the BatchNorm running statistics off their defaults
    return m.eval()


@pytest.mark.parametrize("target", [0, 2, torch.tensor([0, 1, 2, 1, 0])])
def test_summed_gradients_equal_captums_exactly(target):
    model, x = _model(), torch.randn(5, 6, requires_grad=True)
    ours = summed_gradients(model, (x,), target)
    theirs = compute_gradients(model, (x,), target)
    assert torch.equal(ours[0], theirs[0])


def test_summed_gradients_refuse_a_missing_target_like_captum():
    with pytest.raises(ValueError, match="Target not provided"):
        summed_gradients(_model(), (torch.randn(2, 6, requires_grad=True),), None)


def test_fast_gradients_reaches_the_method_a_noise_tunnel_wraps():
    tunnel = fast_gradients(attr.NoiseTunnel(attr.Saliency(_model())))
    assert tunnel.attribution_method.gradient_func is summed_gradients


def test_integrated_gradients_unchanged_by_the_faster_gradient():
    model, x = _model(), torch.randn(4, 6)
    slow = attr.IntegratedGradients(model).attribute(x, target=1, n_steps=20)
    fast = fast_gradients(attr.IntegratedGradients(model)).attribute(x, target=1, n_steps=20)
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-6)
