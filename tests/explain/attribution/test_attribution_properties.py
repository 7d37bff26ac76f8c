"""Property tests (hypothesis): completeness of integrated gradients and DeepLIFT on random
small networks, and zero attribution wherever a feature equals its baseline."""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from explain.attribution import attribute

_SETTINGS = settings(max_examples=12, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])


def _net(seed: int, width: int, depth: int, act: type[nn.Module]) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(5, width), act()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), act()]
    return nn.Sequential(*layers, nn.Linear(width, 3)).eval()


nets = st.builds(_net, seed=st.integers(0, 10_000), width=st.integers(2, 8),
                 depth=st.integers(1, 3), act=st.sampled_from([nn.Tanh, nn.Sigmoid, nn.Softplus]))
points = st.lists(st.floats(-2, 2, allow_nan=False, width=32), min_size=5, max_size=5)


@_SETTINGS
@given(net=nets, x=points, b=points, target=st.integers(0, 2))
def test_integrated_gradients_sum_to_the_output_difference(net, x, b, target):
    x, b = torch.tensor([x]), torch.tensor([b])
    a = attribute(net, x, target=target, baselines=b, n_steps=64)
    gap = float(net(x)[0, target] - net(b)[0, target])
    assert abs(float(a.values.sum()) - gap) <= 1e-3 + 1e-2 * abs(gap)
    assert abs(float(a.values.sum()) + float(a.convergence_delta[0]) - gap) < 1e-4


@_SETTINGS
@given(net=nets, x=points, b=points, target=st.integers(0, 2))
def test_deeplift_is_complete_exactly(net, x, b, target):
    x, b = torch.tensor([x]), torch.tensor([b])
    a = attribute(net, x, target=target, baselines=b, method="deeplift")
    gap = float(net(x)[0, target] - net(b)[0, target])
    assert a.method == "deeplift"
    assert abs(float(a.values.sum()) - gap) <= 1e-4 + 1e-4 * abs(gap)


@_SETTINGS
@given(net=nets, x=points, same=st.lists(st.booleans(), min_size=5, max_size=5),
       method=st.sampled_from(["integrated_gradients", "deeplift", "occlusion",
                               "feature_ablation", "input_x_gradient"]))
def test_features_equal_to_the_baseline_get_zero(net, x, same, method):
    x = torch.tensor([x])
    mask = torch.tensor([same])
    b = torch.where(mask, x, torch.full_like(x, 0.5))
    if method == "input_x_gradient":  # baseline-free: zero where the input is zero
        x, b, mask = torch.where(mask, 0.0, x), None, mask
        a = attribute(net, x, method=method)
    else:
        a = attribute(net, x, baselines=b, method=method, **(
            {"n_steps": 8} if method == "integrated_gradients" else {}))
    assert torch.all(a.values[mask].abs() < 1e-6)  # batched forwards may differ by 1 ulp
