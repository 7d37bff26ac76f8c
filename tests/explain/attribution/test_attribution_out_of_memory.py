"""The memory promise of the out-of-memory back-off, simulated on CPU (a wrapper raises "CUDA
out of memory" for a gradient pass above a row limit): a retry halves the pass that really
ran, the plan remembered afterwards is the largest pass that fit (the next call runs there
and does not run out of memory again), a given batch_size backs off in its call only, and a
pass that ran out of memory is not measured. Counted in passes, not timed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from explain import AttributionError
from explain.attribution import attribute, batching
from explain.attribution.backoff import OUT_OF_MEMORY, Backoff, run_chunked

OOM = "out of memory: retried with {} samples and {} rows per pass"


@pytest.fixture(autouse=True)
def _fresh_cache():
    batching.clear_cache()
    yield
    batching.clear_cache()


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).eval()


class Tight(nn.Module):
    """``model`` with a memory limit: a gradient pass of more than ``limit`` rows runs out of
    memory (after the first layer when ``partial``: autograd has saved a part of the pass).
    ``passes`` and ``failed`` record the rows of every gradient pass and of those that failed."""

    def __init__(self, model: nn.Sequential, limit: int, partial: bool = False) -> None:
        super().__init__()
        self.model, self.limit, self.partial = model, limit, partial
        self.passes: list[int] = []
        self.failed: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = int(x.shape[0])
        if torch.is_grad_enabled():
            self.passes.append(rows)
            if rows > self.limit:
                self.failed.append(rows)
                if self.partial:
                    self.model[0](x)
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.model(x)


def test_the_retry_halves_the_pass_that_ran_not_the_plans_rows():
    tight, x = Tight(_net(), limit=16).eval(), torch.randn(12, 6)
    a = attribute(tight, x, target=0, n_steps=8)
    # the 2048-row plan ran 12 samples x 8 steps as one 96-row pass: the retries ask for 48,
    # 24 and 12 rows (halving 2048 to 1024, 512, 256 would not change the pass at all)
    assert list(a.warnings) == [OOM.format(6, 48), OOM.format(3, 24), OOM.format(1, 12)]
    # the measured 4-sample forward, the failed passes, then 12 passes of 1 sample x 8 steps
    assert tight.passes == [4, 96, 48, 24] + [8] * 12
    assert tight.failed == [96, 48, 24]


def test_one_sample_of_many_steps_retries_at_half_its_pass():
    tight, x = Tight(_net(), limit=16).eval(), torch.randn(1, 6)
    a = attribute(tight, x, target=0, n_steps=100)
    # one sample: halving the chunk cannot help, halving the 100-row pass does (before, the
    # 100-row pass ran again at 512, 256 and 128 rows)
    assert list(a.warnings) == [OOM.format(1, 50), OOM.format(1, 25), OOM.format(1, 12)]
    assert tight.failed == [100, 50, 25]
    assert tight.passes[:4] == [1, 100, 50, 25] and max(tight.passes[4:]) == 12
    assert sum(tight.passes[4:]) == 100           # the retry ran every step once
    assert a.plan.rows == 12 and a.plan.reason == OUT_OF_MEMORY


def test_a_second_call_runs_at_the_pass_that_fit_and_does_not_run_out_of_memory():
    tight, x = Tight(_net(), limit=16).eval(), torch.randn(12, 6)
    first = attribute(tight, x, target=0, n_steps=8)
    tight.passes.clear()
    tight.failed.clear()
    later = attribute(tight, x, target=0, n_steps=8)
    assert first.plan.rows == 8 and first.plan.reason == OUT_OF_MEMORY
    assert later.plan == first.plan and later.timings["probe"] == 0
    assert later.warnings == () and tight.failed == []
    # 8 samples x 1 step per pass, then 4 samples x 2 steps: 8-row passes from the start
    assert tight.passes == [8] * 12
    assert torch.allclose(first.values, later.values, atol=1e-6)


def test_a_one_pass_job_that_ran_out_of_memory_remembers_what_fit():
    tight, x = Tight(_net(), limit=16).eval(), torch.randn(6, 6)
    first = attribute(tight, x, target=0, n_steps=8)   # 48 rows: one pass, nothing measured
    tight.passes.clear()
    later = attribute(tight, x, target=0, n_steps=8)
    assert list(first.warnings) == [OOM.format(3, 24), OOM.format(1, 12)]
    assert first.plan.rows == 8 and first.plan.reason == OUT_OF_MEMORY
    assert later.warnings == () and later.plan == first.plan
    assert tight.passes == [6] * 8                    # 6 samples x 1 step per pass


def test_a_given_batch_size_backs_off_in_its_call_and_leaves_the_plan_alone():
    tight, x = Tight(_net(), limit=16).eval(), torch.randn(12, 6)
    key = batching.plan_key(x, True, False)
    kept = batching.BatchPlan(rows=256, bytes_per_row=88, budget=2**30, reason="cache")
    batching.remember(tight, key, kept)
    first = attribute(tight, x, target=0, n_steps=8, batch_size=64)
    again = attribute(tight, x, target=0, n_steps=8, batch_size=64)
    # 64 rows for 12 samples run 4 steps per pass (48 rows): halved to 24, then to 12
    assert list(first.warnings) == list(again.warnings) == [OOM.format(6, 24),
                                                           OOM.format(3, 12)]
    assert first.plan == again.plan == batching.BatchPlan(rows=64)
    assert batching.cached_plan(tight, key, None) == kept


def test_a_pass_that_ran_out_of_memory_is_not_measured():
    tight = Tight(_net(), limit=16, partial=True)
    with batching.measure(tight) as measured:
        with pytest.raises(RuntimeError, match="out of memory"):
            tight(torch.randn(64, 6, requires_grad=True))   # saved the first layer's input
        tight(torch.randn(8, 6, requires_grad=True))
        after_oom = measured()
    with batching.measure(tight) as measured:
        tight(torch.randn(8, 6, requires_grad=True))
        clean = measured()
    assert after_oom == clean
    # x (6 floats) and the Tanh output (16 floats) per row: the partial 64-row pass stored 24;
    # backward would run 3 nodes to x (linear, tanh, linear) of median result 16 per row;
    # the largest single tensor kept is the Tanh output
    assert clean == batching.Footprint(bytes_per_row=88, rows=8, largest_per_row=64,
                                       op_elements_per_row=16, nodes=3,
                                       saved_largest_per_row=64)


def test_a_first_pass_that_ran_out_of_memory_leaves_a_measured_plan():
    tight, x = Tight(_net(), limit=16).eval(), torch.randn(12, 6)
    a = attribute(tight, x, target=0, n_steps=8)
    assert tight.failed[0] == 96                        # the first pass (at the plan) failed
    assert a.plan.bytes_per_row > 0 and a.plan.largest_per_row > 0
    assert a.plan.budget > 0 and a.plan.cache > 0


def test_a_new_budget_replans_no_larger_than_the_out_of_memory_cut():
    model, key = _net(), batching.plan_key(torch.zeros(1, 6), True, False)
    cut = batching.BatchPlan(rows=8, bytes_per_row=88, budget=2**30, reason=OUT_OF_MEMORY,
                             largest_per_row=64, cache=32 * 2**20)
    batching.remember(model, key, cut)
    larger = batching.cached_plan(model, key, 2**31)
    smaller = batching.cached_plan(model, key, 3 * 88 * 4)   # room for 4 rows
    assert (larger.rows, larger.reason, larger.budget) == (8, OUT_OF_MEMORY, 2**31)
    assert (smaller.rows, smaller.reason) == (4, "budget")


def test_no_out_of_memory_leaves_the_plan_as_it_was():
    plan, backoff = batching.BatchPlan(rows=64, reason="cache"), Backoff(_net())
    out = run_chunked(lambda lo, hi, rows: hi - lo, 5, chunk=2, rows=64, warnings=[],
                      backoff=backoff)
    assert out == [2, 2, 1] and backoff.capped(plan) is plan and backoff.rows == 0


def test_a_pass_of_unknown_rows_is_taken_to_be_the_rows_asked():
    model, notes = _net(), []

    def work(lo: int, hi: int, rows: int) -> int:
        with torch.no_grad():
            model(input=torch.zeros(3, 6))              # by keyword: the hook sees no rows
        if rows > 8:
            raise RuntimeError("CUDA out of memory")
        return hi - lo

    out = run_chunked(work, 1, chunk=1, rows=32, warnings=notes, backoff=Backoff(model))
    # not mistaken for a one-row pass (that would end in "one sample per pass" at once)
    assert out == [1] and notes == [OOM.format(1, 16), OOM.format(1, 8)]


def test_the_pass_that_fit_is_the_pass_as_it_ran_also_when_larger_than_asked():
    model, notes = _net(), []
    backoff = Backoff(model)

    def work(lo: int, hi: int, rows: int) -> int:
        with torch.no_grad():
            model(torch.zeros(hi - lo, 6))              # the whole chunk, whatever rows says
        if hi - lo > 4:
            raise RuntimeError("CUDA out of memory")
        return hi - lo

    out = run_chunked(work, 8, chunk=8, rows=2, warnings=notes, backoff=backoff)
    assert out == [4, 4] and notes == [OOM.format(4, 1)]
    # 4-row passes completed, although 1 row was asked: the plan remembers 4
    assert backoff.fitted == 4 and backoff.capped(batching.BatchPlan(rows=64)).rows == 4


def test_a_measured_forward_that_runs_out_of_memory_is_retried_on_fewer_samples():
    tight, x = Tight(_net(), limit=2).eval(), torch.randn(12, 6)
    a = attribute(tight, x, target=0, n_steps=8)
    # the 4-sample footprint failed, 2 samples fit: the plan starts there, no pass fails again
    assert tight.failed == [4]
    assert (a.plan.rows, a.plan.reason) == (2, OUT_OF_MEMORY)
    assert list(a.warnings) == ["out of memory: the measured forward fit 2 samples; planned 2 "
                                "rows per pass"]
    assert max(tight.passes[1:]) == 2
    plain = attribute(_net(), x, target=0, n_steps=8)
    assert torch.allclose(a.values, plain.values, atol=1e-6)


def test_a_measured_forward_that_runs_out_of_memory_on_one_sample_is_a_typed_error():
    tight = Tight(_net(), limit=0).eval()
    with pytest.raises(AttributionError, match="ran out of memory with one sample per pass"):
        attribute(tight, torch.randn(12, 6), target=0, n_steps=8)
    assert tight.failed == [4, 2, 1]


def test_a_model_error_in_the_measured_forward_is_not_taken_for_out_of_memory():
    class Broken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = _net()

        def forward(self, x):
            if torch.is_grad_enabled():
                raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")
            return self.net(x)

    # the model's own error comes through, as from any pass (its inputs passed the checks)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        attribute(Broken().eval(), torch.randn(12, 6), target=0, n_steps=8)


@pytest.mark.parametrize(("method", "copies"), [("smoothgrad", {"nt_samples": 4}),
                                                ("gradient_shap", {"n_samples": 4})])
def test_noisy_copies_back_off_to_the_pass_that_fits_with_the_same_values(method, copies):
    # 12 samples x 4 copies: one chunk of all 12 (copies_chunk), one 48-row pass; above 16
    # rows the model runs out of memory
    tight, x = Tight(_net(), limit=16).eval(), torch.randn(12, 6)

    a = attribute(tight, x, target=0, method=method, **copies)

    assert list(a.warnings) == [OOM.format(6, 24), OOM.format(3, 12)]
    assert tight.failed == [48, 24] and tight.passes == [48, 24] + [12] * 4
    # each sample's draws are its own: the values of a run that never ran out of memory
    assert torch.allclose(a.values, attribute(_net(), x, target=0, method=method,
                                              **copies).values, atol=1e-6)
