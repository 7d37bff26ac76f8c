"""Auto-tuned batching: the measured best size wins, plans are cached per model, memory
budgets cap the sizes tried, and out-of-memory errors halve the batch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from explain import AttributionError
from explain.attribution import attribute, batching
from explain.attribution.prepare import PlainForward


@pytest.fixture(autouse=True)
def _fresh_cache():
    batching.clear_cache()
    yield
    batching.clear_cache()


@pytest.fixture
def fake_speed(monkeypatch):
    """Throughput peaks at 128 rows, like a model whose cache spills above that."""
    tried = []

    def speed(forward, row, args, target, rows, grad, reps=1):
        tried.append(rows)
        return {32: 100.0, 64: 180.0, 128: 300.0, 256: 250.0, 512: 120.0, 1024: 90.0}[rows]

    monkeypatch.setattr(batching, "_time_rows", speed)
    return tried


def test_the_measured_best_size_is_chosen_and_cached(fake_speed):
    model = nn.Linear(4, 2)
    plan = batching.plan_batch(model, PlainForward(model), torch.zeros(1, 4), total_rows=10_000)
    assert plan.rows == 128 and plan.rows_per_s == 300.0
    # a warm-up, then each size (3 timed passes) while the probe stays under 1/5 of the job
    assert fake_speed == [32, 32, 64, 128, 256]
    again = batching.plan_batch(model, PlainForward(model), torch.zeros(1, 4), total_rows=10_000)
    assert again is plan and len(fake_speed) == 5


def test_a_probe_still_climbing_at_its_largest_size_goes_further(fake_speed):
    model = nn.Linear(4, 2)
    plan = batching.plan_batch(model, PlainForward(model), torch.zeros(1, 4), total_rows=5000)
    assert fake_speed[1:] == [32, 64, 128]              # 3 x (32 + 64 + 128) <= 5000 / 5
    assert plan.rows == 512 and plan.rows_per_s == 300.0


def test_small_jobs_run_in_one_pass_without_probing(fake_speed):
    model = nn.Linear(4, 2)
    plan = batching.plan_batch(model, PlainForward(model), torch.zeros(1, 4), total_rows=300)
    assert plan.rows == 300 and fake_speed == []
    plan = batching.plan_batch(model, PlainForward(model), torch.zeros(1, 4), total_rows=4000)
    assert plan.rows == 1024 and fake_speed == []


def test_the_memory_budget_caps_the_sizes_tried(fake_speed):
    model = nn.Linear(4, 2)
    row = torch.zeros(1, 4)
    per_row = batching._bytes_per_row(model, PlainForward(model), row, ())
    plan = batching.plan_batch(model, PlainForward(model), row, total_rows=10_000,
                               budget=70 * per_row)
    assert fake_speed == [32, 32, 64] and plan.rows == 64


def test_out_of_memory_halves_the_chunk_and_says_so():
    calls, notes = [], []

    def work(lo, hi, rows):
        calls.append((lo, hi, rows))
        if hi - lo > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return hi - lo

    out = batching.run_chunked(work, 5, chunk=8, rows=64, warnings=notes)
    assert out == [2, 2, 1] and sum(out) == 5
    assert calls[:3] == [(0, 5, 64), (0, 4, 32), (0, 2, 16)]
    assert notes == ["out of memory: retried with 4 samples and 32 rows per pass",
                     "out of memory: retried with 2 samples and 16 rows per pass"]


def test_out_of_memory_with_one_sample_is_a_clear_error():
    def work(lo, hi, rows):
        raise RuntimeError("out of memory")

    with pytest.raises(AttributionError, match="out of memory with one sample per pass"):
        batching.run_chunked(work, 3, chunk=1, rows=1, warnings=[])


def test_other_errors_are_not_mistaken_for_out_of_memory():
    def work(lo, hi, rows):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        batching.run_chunked(work, 3, chunk=2, rows=2, warnings=[])


def test_a_probed_plan_drives_captums_internal_batch_size(monkeypatch):
    seen = {}
    from captum import attr

    real = attr.IntegratedGradients.attribute

    def spy(self, *args, **kwargs):
        seen.setdefault("ibs", []).append(kwargs["internal_batch_size"])
        seen.setdefault("n", []).append(args[0].shape[0])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(attr.IntegratedGradients, "attribute", spy)
    monkeypatch.setattr(batching, "_time_rows",
                        lambda f, r, a, t, rows, g, reps=1: {32: 1.0, 64: 5.0}.get(rows, 2.0))
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2)).eval()
    a = attribute(model, torch.randn(250, 4), target=0, n_steps=40)
    assert seen["ibs"] == [64] * 4 and seen["n"] == [64, 64, 64, 58]  # 64-row passes
    assert torch.isfinite(a.values).all()


def test_real_probe_measures_positive_throughput():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
    plan = batching.plan_batch(model, PlainForward(model), torch.randn(1, 4), total_rows=5000,
                               budget=2**30)
    assert all(v > 0 for v in plan.probed.values())
    assert plan.rows in plan.probed or plan.rows > max(plan.probed)  # measured, or extrapolated
    assert plan.rows_per_s >= 0.95 * max(plan.probed.values())
