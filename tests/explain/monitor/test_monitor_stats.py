"""The activation statistics: one-pass sums on the device, finished on the host."""

from __future__ import annotations

import math

import pytest
import torch

from explain.monitor._layers import activation_stats, finish_stats


def _stats(y: torch.Tensor, kind: str | None, unit_dim: int = 1) -> list[float]:
    return finish_stats(activation_stats(y, kind, unit_dim).tolist(), kind, y)


@pytest.mark.parametrize("kind", ["relu", "tanh", "sigmoid", None])
def test_stats_match_torch(kind):
    torch.manual_seed(0)
    x = torch.randn(32, 16, 5, 5)
    y = {"relu": torch.relu, "tanh": lambda t: torch.tanh(3 * t),
         "sigmoid": lambda t: torch.sigmoid(5 * t), None: lambda t: t * 2 + 1}[kind](x)
    y[:, 3] = 0 if kind == "relu" else y[:, 3]          # channel 3 dead for the ReLU case
    mean, std, zero, sat, dead = _stats(y, kind)
    assert mean == pytest.approx(float(y.mean()), rel=1e-5, abs=1e-7)
    assert std == pytest.approx(float(y.std()), rel=1e-5)
    if kind == "relu":
        assert zero == pytest.approx(float((y == 0).float().mean()), abs=1e-6)
        assert dead == pytest.approx(1 / 16, abs=1e-6)
    else:
        assert math.isnan(zero) and math.isnan(dead)
    if kind == "tanh":
        assert sat == pytest.approx(float((y.abs() > 0.99).float().mean()), abs=1e-6)
    elif kind == "sigmoid":
        assert sat == pytest.approx(float(((y < 0.01) | (y > 0.99)).float().mean()), abs=1e-6)
    else:
        assert math.isnan(sat)


def test_std_is_exact_when_the_mean_dwarfs_it():
    # |mean| / std = 1e5: E[y^2] - E[y]^2 in float32 would lose every digit
    y = 1e4 + 0.1 * torch.randn(4096, generator=torch.Generator().manual_seed(1))
    std = _stats(y[None], None)[1]
    assert std == pytest.approx(float(y.double().std()), rel=1e-3)


def test_non_finite_values_give_non_finite_moments():
    y = torch.ones(4, 3)
    y[1, 2] = float("inf")
    mean, std = _stats(y, None)[:2]
    assert not math.isfinite(mean) and not math.isfinite(std)


def test_empty_and_single_value():
    assert all(math.isnan(v) for v in _stats(torch.empty(0, 3), "relu"))
    mean, std = _stats(torch.tensor([[2.0]]), None)[:2]
    assert mean == 2.0 and math.isnan(std)


def test_non_finite_losses_are_counted_between_records_and_across_folds():
    from torch import nn

    from explain.monitor import TrainingMonitor

    model = nn.Linear(3, 2)
    with TrainingMonitor(model, every=1000) as mon:   # one record (step 0), 700 unsampled steps
        for k in range(701):
            loss = torch.tensor(float("nan") if k % 100 == 7 else 1.0)
            mon.step(loss=loss if k % 2 else torch.stack([loss, loss]))  # [2]-shaped too
            assert len(mon._losses._kept) < 256                        # folded, not hoarded
    # k = 7, 107, ..., 607 (seven NaNs); odd k pass one value, even k pass two
    assert mon.history.nonfinite["loss"] == 7
    assert mon.history.steps == [0]
