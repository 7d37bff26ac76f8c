"""``n_steps="auto"`` integrated gradients: per-sample completeness within the tolerance, the
same attributions as many fixed steps, refinement only where needed, warnings at the cap."""

from __future__ import annotations

import pytest
import torch
from captum import attr
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

from explain.attribution import attribute, batching


@pytest.fixture(autouse=True)
def _fresh_cache():
    batching.clear_cache()
    yield
    batching.clear_cache()


def _net(seed: int, width: int, act: type[nn.Module]) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, width), act(), nn.Linear(width, width), act(),
                         nn.Linear(width, 3)).eval()


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), width=st.sampled_from([4, 16, 32]),
       act=st.sampled_from([nn.Tanh, nn.Softplus, nn.ReLU]), scale=st.sampled_from([1.0, 4.0]))
def test_auto_steps_meet_the_tolerance_and_match_many_fixed_steps(seed, width, act, scale):
    net = _net(seed, width, act)
    x = scale * torch.randn(8, 5, generator=torch.Generator().manual_seed(seed))
    a = attribute(net, x, target=1, n_steps="auto", max_steps=4097)
    assume(a.method == "integrated_gradients")   # not a dead-ReLU net's fallback to ablation
    with torch.no_grad():
        gap = (net(x)[:, 1] - net(torch.zeros_like(x))[:, 1]).double()
    err = (a.values.double().sum(1) - gap).abs()
    assert (err <= 0.01 * gap.abs() + 1e-4 * (1 + gap.abs())).all()
    assert torch.allclose(a.convergence_delta.double(), a.values.double().sum(1) - gap,
                          atol=1e-5)
    ref = attr.IntegratedGradients(net).attribute(x, target=1, n_steps=2048,
                                                  method="riemann_trapezoid")
    # feature by feature within 5% of the attributions' L1 size (completeness bounds the total
    # only: ReLU kinks move single features more than their sum)
    assert ((a.values - ref).abs().sum(1) <= 0.05 * ref.abs().sum(1) + 1e-4).all()
    assert a.steps.shape == (8,) and ((a.steps >= 9) & (a.steps <= 4097)).all()


@pytest.mark.xfail(strict=True, reason="known: auto IG meets completeness (the sum) here, but "
                   "one sample's features are 5.3-6.2% off (L1, against 2048 trapezoid steps), "
                   "accepted at 9 and 19 points; found by random hypothesis runs")
@pytest.mark.parametrize("seed, width", [(5317, 32), (1000, 16)])
def test_known_relu_nets_where_a_sample_is_complete_but_its_features_are_over_5_percent_off(
        seed, width):
    net = _net(seed, width, nn.ReLU)
    x = 4.0 * torch.randn(8, 5, generator=torch.Generator().manual_seed(seed))
    a = attribute(net, x, target=1, n_steps="auto", max_steps=4097)
    ref = attr.IntegratedGradients(net).attribute(x, target=1, n_steps=2048,
                                                  method="riemann_trapezoid")
    with torch.no_grad():
        gap = (net(x)[:, 1] - net(torch.zeros_like(x))[:, 1]).double()
    assert ((a.values.double().sum(1) - gap).abs() <= 0.01 * gap.abs() + 1e-4).all()  # holds
    assert ((a.values - ref).abs().sum(1) <= 0.05 * ref.abs().sum(1) + 1e-4).all()     # fails


def test_a_relu_kink_refines_only_the_intervals_that_hold_it():
    # f(x) = relu(x - 0.3) - relu(x - 0.55) / 2 on x in [0, 1]: kinks at alpha 0.3 and 0.55,
    # linear elsewhere, so only the intervals around the two kinks get midpoints
    net = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1)).eval()
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.copy_(torch.tensor([-0.3, -0.55]))
        net[2].weight.copy_(torch.tensor([[1.0, -0.5]]))
        net[2].bias.zero_()
    x, gap = torch.ones(1, 1), 0.7 - 0.45 / 2
    a = attribute(net, x, target=0, n_steps="auto", max_steps=4097)
    assert a.method == "integrated_gradients" and a.warnings == ()
    assert abs(float(a.values) - gap) <= 0.01 * gap
    # uniform doubling needs 129 points for the same error; here 9 first points, then one
    # midpoint per kink and halving
    assert int(a.steps) <= 9 + 2 * 7


def test_a_linear_model_needs_only_the_first_points():
    net = nn.Linear(5, 2).eval()
    a = attribute(net, torch.randn(6, 5), target=0, n_steps="auto")
    assert a.steps.tolist() == [9] * 6 and a.warnings == ()


def test_only_unconverged_samples_are_refined():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 2)).eval()
    x = torch.tensor([[1e-3, 1e-3], [20.0, -20.0]])    # nearly linear vs strongly curved path
    rows = []
    net.register_forward_pre_hook(lambda _m, i: rows.append(i[0].shape[0])
                                  if torch.is_grad_enabled() else None)
    a = attribute(net, x, target=0, n_steps="auto", batch_size=1000)
    easy, hard = a.steps.tolist()
    assert easy == 9 and hard > 13
    # exactly the evaluations reported per sample (a given batch_size plans nothing, and no
    # gradient check runs: the values are not all zero)
    assert sum(rows) == easy + hard


def test_samples_at_the_cap_are_named_in_warnings():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 2)).eval()
    x = torch.tensor([[1e-3, 1e-3], [20.0, -20.0]])
    a = attribute(net, x, target=0, n_steps="auto", max_steps=13)
    assert a.steps.tolist() == [9, 13]
    assert a.warnings[-1] == (
        "integrated_gradients: 1 of 2 samples did not reach the completeness tolerance "
        "within 13 steps (samples 1); their convergence_delta shows how far off they are, "
        "raise 'max_steps' or 'tolerance'")


def test_auto_steps_reject_a_fixed_rule():
    from explain import InvalidInputError
    from explain.attribution import IntegratedGradients

    with pytest.raises(InvalidInputError, match="must be None or 'riemann_trapezoid' with "
                       "n_steps='auto'. Got 'gausslegendre' instead."):
        IntegratedGradients(nn.Linear(3, 2).eval()).explain(torch.ones(1, 3), n_steps="auto",
                                                            method="gausslegendre")


def test_many_kinks_in_one_first_level_interval_keep_features_within_5_percent():
    # found by hypothesis (seed 237, width 16, scale 4): 8 ReLU kinks inside [0, 0.25], whose
    # ends agree with a single kink; with 4 first intervals accepted on one level the sample was
    # 7.2% off. The first pass now halves each of them, so every interval is judged on two levels
    net = _net(237, 16, nn.ReLU)
    x = 4.0 * torch.randn(8, 5, generator=torch.Generator().manual_seed(237))[1:2]
    a = attribute(net, x, target=1, n_steps="auto", max_steps=4097)
    ref = attr.IntegratedGradients(net).attribute(x, target=1, n_steps=2048,
                                                  method="riemann_trapezoid")
    assert float((a.values - ref).abs().sum()) <= 0.05 * float(ref.abs().sum())


def test_auto_steps_are_deterministic_and_per_sample():
    net = _net(3, 16, nn.ReLU)
    x = 3.0 * torch.randn(10, 5, generator=torch.Generator().manual_seed(3))
    first = attribute(net, x, target=2, n_steps="auto")       # planned from the 4-sample footprint
    again = attribute(net, x, target=2, n_steps="auto")       # cached plan: one chunk
    assert torch.equal(first.steps, again.steps)
    assert torch.allclose(first.values, again.values, rtol=0, atol=1e-6)
    batched = attribute(net, x, target=2, n_steps="auto", batch_size=7)
    alone = attribute(net, x[4:5], target=2, n_steps="auto", batch_size=7)
    # a sample's refinement depends on the sample alone, not on the rows per pass or its batch
    assert torch.equal(batched.steps, first.steps)
    assert torch.equal(alone.steps, first.steps[4:5])
    assert torch.allclose(alone.values, first.values[4:5], rtol=0, atol=1e-6)
    assert first.steps.tolist() != [9] * 10                   # the kinks were refined


def test_a_first_call_runs_one_auto_whose_first_pass_is_the_probe(monkeypatch):
    from explain.attribution.methods import _auto_steps

    net = _net(3, 16, nn.ReLU)
    x = 3.0 * torch.randn(20, 5, generator=torch.Generator().manual_seed(3))
    rounds: list[int] = []
    passes: list[int] = []
    add = _auto_steps._Path.add

    def counted(self, samp, alpha):
        rounds.append(samp.numel())
        return add(self, samp, alpha)

    monkeypatch.setattr(_auto_steps._Path, "add", counted)
    net.register_forward_pre_hook(lambda _m, i: passes.append(i[0].shape[0])
                                  if torch.is_grad_enabled() else None)
    first = attribute(net, x, target=2, n_steps="auto")
    first_rounds, first_passes = list(rounds), list(passes)
    rounds.clear()
    passes.clear()
    later = attribute(net, x, target=2, n_steps="auto")
    # one auto run in both calls, the same rounds of the same points (20 x 9 = 180 first)
    assert first_rounds == rounds and rounds[0] == 180 and len(rounds) > 1
    assert sum(rounds) == int(later.steps.sum())
    # the first call: the measured forward of 4 samples (it plans 2048 rows, the CPU cap), then the first
    # round in one pass under the meter, then one pass per round; the later call: one pass
    # per round
    assert first_passes[:2] == [4, 180]
    assert first_passes[2:] == rounds[1:] and passes == rounds
    assert first.plan == later.plan and first.plan.rows == 2048
    assert first.timings["probe"] > 0 and later.timings["probe"] == 0
    assert torch.equal(first.steps, later.steps)
    assert torch.allclose(first.values, later.values, rtol=0, atol=1e-6)
