"""The checks on real training runs: tiny nets under the real TrainingMonitor (fast), and the zoo
presets with planted pathologies (slow)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from explain.checks import diagnose
from explain.findings import Severity
from explain.monitor import TrainingMonitor


def mlp(act: type[nn.Module], depth: int, *, small_init: bool = False,
        bias: float | None = None) -> nn.Sequential:
    layers: list[nn.Module] = []
    width_in = 8
    for _ in range(depth):
        linear = nn.Linear(width_in, 16)
        if small_init:
            nn.init.normal_(linear.weight, std=0.05)
        if bias is not None:
            nn.init.constant_(linear.bias, bias)
        layers += [linear, act()]
        width_in = 16
    return nn.Sequential(*layers, nn.Linear(16, 4))


def train(model: nn.Module, optimizer: str = "sgd", lr: float = 0.05, steps: int = 30):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 8, generator=g)                   # [samples, features]
    y = (x[:, 0] > 0).long() * 2 + (x[:, 1] > 0).long()    # 4 quadrant classes
    opt = (torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam)(model.parameters(), lr=lr)
    with TrainingMonitor(model, every=2) as mon:
        for _ in range(steps):
            i = torch.randint(0, 128, (32,), generator=g)
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[i]), y[i])
            loss.backward()
            opt.step()
            mon.step(loss=loss.detach())
    return mon.history


def by_id(findings):
    return {f.check: f for f in findings}


def test_deep_sigmoid_net_with_small_init_has_vanishing_gradients():
    torch.manual_seed(0)
    model = mlp(nn.Sigmoid, depth=8, small_init=True)
    f = by_id(diagnose(train(model), model))["vanishing-gradients"]
    assert f.severity is Severity.FAIL
    assert f.evidence["ratio"] < 1e-6 and f.evidence["loss"]["progress"] < 0.1


def test_relu_net_with_default_init_is_healthy():
    torch.manual_seed(0)
    model = mlp(nn.ReLU, depth=3)
    found = by_id(diagnose(train(model, "adam", 1e-2), model))
    for check_id in ("vanishing-gradients", "exploding-gradients", "non-finite", "saturation"):
        assert found[check_id].severity <= Severity.INFO, found[check_id].summary
    assert found["vanishing-gradients"].evidence["ratio"] > 1e-2


def test_negative_biases_kill_relu_units():
    torch.manual_seed(0)
    model = mlp(nn.ReLU, depth=3, bias=-3.0)
    f = by_id(diagnose(train(model), model))["dead-units"]
    assert f.severity is Severity.FAIL
    assert max(f.evidence["frac_dead"]) == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("name", [
    "cnn-overfit", "mlp-vanishing", "rnn-exploding", "mlp-dead-relu", "mlp-digits", "rnn-vowels",
    "cnn-mnist", "transformer-rt"])
def test_presets_get_their_expected_diagnosis(name, tmp_path):
    zoo = pytest.importorskip("zoo")
    from explain.errors import TrainingDivergedError

    preset = zoo.get_preset(name)
    try:
        run = zoo.train(preset=name, out=tmp_path, progress=False)
    except TrainingDivergedError:  # the planted explosion may end the run; its history is kept
        run = zoo.load_run(tmp_path)
    findings = by_id(diagnose(run.history, run.model))
    flagged = {c for c, f in findings.items() if Severity.WARN <= f.severity <= Severity.FAIL}
    assert set(preset.expected) <= flagged, {c: findings[c].summary for c in preset.expected}
    if not preset.expected:
        core = {"overfitting", "vanishing-gradients", "exploding-gradients", "non-finite",
                "dead-units", "saturation"}
        assert not flagged & core, {c: findings[c].summary for c in flagged & core}
