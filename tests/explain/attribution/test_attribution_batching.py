"""Deterministic batching: the plan comes from measured bytes per row and the budget (never from
timings), a first call computes each row once (only a 4-sample forward is added), plans are
cached per model, memory budgets cap the rows, and out-of-memory errors halve the batch."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from explain import AttributionError
from explain.attribution import attribute, batching, cpu_cache

from ._rows import CountRows

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _fresh_cache():
    batching.clear_cache()
    yield
    batching.clear_cache()


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).eval()


def test_plan_rows_is_a_pure_function_of_footprint_device_budget_and_cache():
    mib = 2**20
    fp = batching.Footprint(bytes_per_row=250_000, rows=64, largest_per_row=50_000)
    plans = {batching.plan_rows(fp, CPU, 2**30, cache=32 * mib, threads=1) for _ in range(5)}
    # 32 MiB / (4 x 50 kB) = 167 rows -> 128
    assert plans == {batching.BatchPlan(rows=128, bytes_per_row=250_000, budget=2**30,
                                        reason="cache", largest_per_row=50_000,
                                        cache=32 * mib, whole_cache=32 * mib)}
    assert batching.plan_rows(fp, CPU, 2**30, cache=8 * mib, threads=1).rows == 32  # floor
    # the floor is 32 rows per thread (each thread works on its slice of every operator)
    assert [(p.rows, p.reason) for p in (batching.plan_rows(fp, CPU, 2**31, cache=8 * mib,
                                                            threads=t) for t in (2, 4, 64, 128))
            ] == [(64, "threads"), (128, "threads"), (2048, "threads"), (2048, "threads")]
    # two threads share the one L3: the cache rule gives them the same rows (a net of few,
    # large operators: neither the overhead nor the threads rule raises it)
    assert batching.plan_rows(fp, CPU, 2**30, cache=32 * mib, threads=2).rows == 128
    assert batching.plan_rows(batching.Footprint(100, 64, 100), CPU, 2**30,
                              cache=32 * mib).rows == 2048                    # the ceiling
    cuda = batching.plan_rows(fp, torch.device("cuda"), 2**40)
    assert (cuda.rows, cuda.reason, cuda.cache) == (4096, "device", 0)


def test_the_largest_tensor_not_the_stored_bytes_sets_the_cpu_rows():
    # a packed recurrent net stores little per row but its backward works on a large gradient
    mib = 2**20
    rnn = batching.Footprint(bytes_per_row=35_000, rows=64, largest_per_row=14_600)
    cnn = batching.Footprint(bytes_per_row=240_000, rows=64, largest_per_row=50_000)
    assert batching.plan_rows(rnn, CPU, 2**30, cache=32 * mib, threads=1).rows == 512
    assert batching.plan_rows(cnn, CPU, 2**30, cache=32 * mib, threads=1).rows == 128
    # without a measured largest tensor the stored bytes stand in
    assert batching.plan_rows(batching.Footprint(35_000, 64), CPU, 2**30,
                              cache=32 * mib, threads=1).rows == 128


def test_a_forward_without_gradients_lets_its_largest_tensor_fill_half_the_cache():
    # the zoo cnn's measured footprint: 49 KiB largest tensor per row, 8 MiB of cache
    mib, cnn = 2**20, batching.Footprint(bytes_per_row=242_368, rows=4, largest_per_row=50_176,
                                         nodes=16, op_elements_per_row=3_136)
    both, forward = (batching.plan_rows(cnn, CPU, 2**30, cache=8 * mib, threads=1, backward=b)
                     for b in (True, False))
    assert (both.rows, forward.rows, forward.reason) == (32, 64, "cache")
    # the budget still caps it, and a remembered forward plan is re-planned as one
    assert batching.plan_rows(cnn, CPU, 3 * 242_368 * 40, cache=8 * mib, threads=1,
                              backward=False).rows == 32
    model = _net()
    key = batching.plan_key(torch.zeros(1, 1, 28, 28), False, None)
    batching.remember(model, key, forward)
    assert batching.cached_plan(model, key, 2**29).rows == 64


def test_a_forward_at_more_threads_lets_each_threads_slice_fill_half_the_cache():
    mib = 2**20
    cnn = batching.Footprint(bytes_per_row=242_368, rows=4, largest_per_row=50_176, nodes=16)
    forward = [batching.plan_rows(cnn, CPU, 2**31, cache=8 * mib, threads=t, backward=False)
               for t in (1, 2, 4)]
    # 1 / 2 / 4 x 8 MiB / (2 x 49 KiB) = 83 / 167 / 334 rows
    assert [(p.rows, p.reason) for p in forward] == [(64, "cache"), (128, "cache"),
                                                     (256, "cache")]
    # with backward the threads share the cache: the floor of 32 rows per thread sets them
    assert batching.plan_rows(cnn, CPU, 2**31, cache=8 * mib, threads=2).rows == 64
    # a depthwise-separable CNN (256 KiB largest tensor per row): the forward's floor is 32
    # rows in all, not per thread (64 rows ran 1.39x slower than 32 at two threads)
    mobile = batching.Footprint(bytes_per_row=3_585_000, rows=4, largest_per_row=262_144,
                                nodes=35)
    assert batching.plan_rows(mobile, CPU, 2**31, cache=8 * mib, threads=2,
                              backward=False).rows == 32
    assert batching.plan_rows(mobile, CPU, 2**31, cache=8 * mib, threads=2).rows == 64


def test_the_per_thread_floor_holds_only_while_32_rows_of_the_largest_tensor_fit_the_cache():
    # a VGG-style CNN on 3x64x64: 512 KiB per row in its first stage, 32 rows are 16 MiB
    mib = 2**20
    vgg = batching.Footprint(bytes_per_row=2_408_000, rows=4, largest_per_row=524_288, nodes=15)
    plans = [batching.plan_rows(vgg, CPU, 2**31, cache=8 * mib, threads=t) for t in (1, 2, 4)]
    assert [(p.rows, p.reason) for p in plans] == [(32, "cache")] * 3
    # with a cache that holds 32 rows of it, the floor is per thread again
    assert batching.plan_rows(vgg, CPU, 2**31, cache=16 * mib, threads=2).rows == 64


def test_occlusion_is_planned_as_a_forward_without_gradients(monkeypatch):
    from explain.attribution import base

    asked: list[bool] = []
    real = base.plan_rows

    def spy(fp, device, budget, *args, backward=True, **kwargs):
        asked.append(backward)
        return real(fp, device, budget, *args, backward=backward, **kwargs)

    monkeypatch.setattr(base, "plan_rows", spy)
    model, x = _net(), torch.randn(20, 6)     # 20 x 7 occlusion rows: more than one probe pass

    attribute(model, x, target=0, method="occlusion")
    attribute(model, x, target=0, method="integrated_gradients")

    assert asked == [False, True]


def test_the_cache_size_comes_from_the_os():
    size = batching.cache_bytes()
    assert size >= 2**20 and size == batching.cache_bytes()


def _fake_cache(root, level: int, size: str, cpus: str) -> None:
    entry = root / "index3"
    entry.mkdir(parents=True)
    for name, text in (("level", str(level)), ("size", size), ("shared_cpu_list", cpus)):
        (entry / name).write_text(text + "\n")


@pytest.mark.parametrize(("size", "cpus", "expected"), [
    ("491520K", "0-1", 8 * 2**20),        # a 2-vCPU guest that sees its host's 480 MiB
    ("32768K", "0-1", 8 * 2**20),         # 16 MiB a CPU is more than any CPU gives a core
    ("32768K", "0-7", 32 * 2**20),        # 8 cores sharing 32 MiB: 4 MiB each, as reported
    ("262144K", "0-31,64-95", 256 * 2**20),   # a server socket: the whole cache
])
def test_the_cache_counts_at_most_4_mib_per_cpu_that_shares_it(tmp_path, monkeypatch, size,
                                                                 cpus, expected):
    _fake_cache(tmp_path, 3, size, cpus)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(128)), raising=False)
    read = cpu_cache._llc_sysfs
    monkeypatch.setattr(cpu_cache, "_llc_sysfs", lambda _root: read(str(tmp_path)))
    assert batching.cache_bytes.__wrapped__() == expected


def test_only_the_cpus_this_process_may_use_count(tmp_path, monkeypatch):
    (tmp_path / "list").write_text("0-63\n")
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {2, 3, 70}, raising=False)
    assert cpu_cache._count_cpus(str(tmp_path / "list")) == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {70}, raising=False)
    assert cpu_cache._count_cpus(str(tmp_path / "list")) == 64    # no overlap: the list


def test_an_unreadable_cache_list_counts_no_cpus(tmp_path):
    assert cpu_cache._llc_sysfs(str(tmp_path / "absent")) == (0, 0, 0)
    (tmp_path / "list").write_text("0-x\n")
    assert cpu_cache._count_cpus(str(tmp_path / "list")) == 0


def test_the_memory_budget_caps_the_rows():
    fp = batching.Footprint(bytes_per_row=1000, rows=64)
    plan = batching.plan_rows(fp, CPU, budget=100 * 3 * 1000)
    assert (plan.rows, plan.reason) == (64, "budget")
    assert plan.rows * 3 * plan.bytes_per_row <= plan.budget


def test_measure_counts_what_backward_keeps_per_row():
    model = _net()
    for rows in (16, 64):
        x = torch.randn(rows, 6, requires_grad=True)
        with batching.measure(model) as footprint:
            torch.autograd.grad(model(x)[:, 0].sum(), x)
        fp = footprint()
        # tanh keeps its output (16 floats) and the first linear its input (6 floats) per row;
        # the largest tensor of the pass is a 16-wide hidden layer; backward runs 3 nodes to
        # the input (linear, tanh, linear), of median result 16 per row (outputs 3, 16, 16);
        # the largest single tensor kept is tanh's output
        assert fp == batching.Footprint(bytes_per_row=(16 + 6) * 4, rows=rows,
                                        largest_per_row=16 * 4, op_elements_per_row=16,
                                        nodes=3, saved_largest_per_row=16 * 4)


def test_nodes_that_only_lead_to_weights_are_not_counted():
    class Scaled(nn.Module):            # the weight goes through 3 operators of its own
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(5, 4))

        def forward(self, x):
            w = (self.w * 2).tanh().t()
            return (x @ w).relu()

    x = torch.randn(8, 4, requires_grad=True)
    model = Scaled()
    with batching.measure(model) as footprint:
        torch.autograd.grad(model(x).sum(), x)
    # the input's path is relu <- mm (2 nodes, 5 elements per row each); mul, tanh and the
    # transpose only reach the weight, which autograd.grad(out, x) never runs
    assert (footprint().nodes, footprint().op_elements_per_row) == (2, 5)


def test_a_bidirectional_gru_is_planned_to_use_both_threads():
    torch.manual_seed(0)

    class BiGRU(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru, self.head = nn.GRU(5, 64, batch_first=True, bidirectional=True), \
                nn.Linear(128, 4)

        def forward(self, x):
            return self.head(self.gru(x)[0].mean(1))

    model, x = BiGRU().eval(), torch.randn(4, 40, 5, requires_grad=True)
    with batching.measure(model) as footprint:
        torch.autograd.grad(model(x).sum(), x)
    fp = footprint()
    cpu, cache = torch.device("cpu"), 32 * 2**20
    one, two = (batching.plan_rows(fp, cpu, 2**30, cache=cache, threads=t) for t in (1, 2))
    # each step's operators hold 64 elements per row (a 64-unit state): torch runs them on one
    # thread up to 32,768 elements, i.e. up to 512 rows; at one thread the fixed cost of its
    # nodes wants ~475 rows: 512 (its 30 KiB input projection x 512 fits the 32 MiB cache)
    assert fp.op_elements_per_row == 64 and fp.nodes > 1000
    assert (one.rows, one.reason) == (512, "overhead")
    # at two threads both rules reach 1,024 rows: the threads rule alone, and the fixed cost
    # (~950 rows, 30 MiB at 1,024: within the cache)
    assert two.rows == 1024 and batching._rows_for_threads(fp.op_elements_per_row, 2) == 1024


def test_the_overhead_and_threads_rules_only_raise_the_rows():
    cpu, cache = torch.device("cpu"), 32 * 2**20
    base = batching.Footprint(bytes_per_row=250_000, rows=64, largest_per_row=50_000)
    many = batching.Footprint(bytes_per_row=250_000, rows=64, largest_per_row=50_000,
                              nodes=2000, op_elements_per_row=4096)
    small = batching.Footprint(bytes_per_row=250_000, rows=64, largest_per_row=50_000,
                               nodes=10, op_elements_per_row=8)
    plans = {name: [batching.plan_rows(fp, cpu, 2**31, cache=cache, threads=t)
                    for t in (1, 2, 4)] for name, fp in
             (("base", base), ("many", many), ("small", small))}
    assert [p.rows for p in plans["base"]] == [128, 128, 128]
    # 2000 nodes x 64 KiB / 250 kB per row = 524 rows per thread (at most 2,048)
    assert [(p.rows, p.reason) for p in plans["many"]] == [
        (512, "overhead"), (1024, "overhead"), (2048, "overhead")]
    # 8 elements per operator and row: 4,097 rows for 2 threads, capped at 2,048
    assert [(p.rows, p.reason) for p in plans["small"]] == [
        (128, "cache"), (2048, "threads"), (2048, "threads")]
    # the budget still caps everything
    assert batching.plan_rows(many, cpu, 2**28, cache=cache, threads=2).reason == "budget"


class _Outputs(nn.Module):
    """A recurrent layer's outputs, reduced over time (``reduce``: ``[B, T, H] -> [B, H]``)."""

    def __init__(self, rnn: nn.Module, reduce) -> None:
        super().__init__()
        self.rnn, self.reduce = rnn, reduce

    def forward(self, x):
        return self.reduce(self.rnn(x)[0])


def test_measure_sees_the_large_intermediate_of_a_recurrent_net():
    torch.manual_seed(0)
    model = _Outputs(nn.GRU(3, 8, batch_first=True), lambda out: out[:, -1])
    x = torch.randn(4, 10, 3, requires_grad=True)
    with batching.measure(model) as footprint:
        torch.autograd.grad(model(x).sum(), x)
    # the input projection of all 10 steps (3 gates x 8 units) is the largest tensor per row,
    # far above any one step's state (8 floats) that autograd saves
    assert footprint().largest_per_row == 10 * 3 * 8 * 4


def test_a_workspace_that_backward_reads_whole_must_fit_the_cache():
    cpu, cache = torch.device("cpu"), 32 * 2**20
    # a fused LSTM (oneDNN): 25.6 kB of output per row, but a 393 kB workspace per row kept
    # for backward; the cache rule on the output alone would give 256 rows
    lstm = batching.Footprint(bytes_per_row=845_440, rows=4, largest_per_row=25_600,
                              nodes=7, op_elements_per_row=800, saved_largest_per_row=393_216)
    plans = [batching.plan_rows(lstm, cpu, 2**30, cache=cache, threads=t) for t in (1, 2)]
    assert [(p.rows, p.reason) for p in plans] == [(64, "cache"), (64, "cache")]
    assert plans[0].saved_largest_per_row == 393_216
    # a tensor kept that is no larger than the results changes nothing
    plain = batching.Footprint(bytes_per_row=250_000, rows=64, largest_per_row=50_000,
                               saved_largest_per_row=50_000)
    assert batching.plan_rows(plain, cpu, 2**30, cache=cache, threads=1).rows == 128


def test_the_largest_kept_tensor_is_per_row_and_leaves_out_weight_copies():
    class Copies(nn.Module):            # keeps a computed copy of its weight for backward
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(64, 256))

        def forward(self, x):
            return (x @ (self.w * 2)).tanh()

    def measured(model, rows, shape):
        x = torch.randn(rows, *shape, requires_grad=True)
        with batching.measure(model) as footprint:
            torch.autograd.grad(model(x).sum(), x)
        return footprint()

    # the 64 kB weight copy would read as 16 kB per row at 4 rows; tanh's output is 1 kB
    assert [measured(Copies(), r, (64,)).saved_largest_per_row for r in (4, 8)] == [1024, 1024]
    torch.manual_seed(0)
    lstm = _Outputs(nn.LSTM(16, 32, batch_first=True), lambda out: out.mean(1))
    per_row = [measured(lstm, r, (20, 16)).saved_largest_per_row for r in (4, 8)]
    # about the same per row at 4 and 8 rows (a workspace, or the outputs, whatever the build
    # keeps; oneDNN's workspace has a small part that does not grow with the rows)
    assert per_row[1] >= 20 * 32 * 4
    assert per_row[1] <= per_row[0] <= 1.1 * per_row[1]


def test_the_plan_is_the_same_on_repeated_calls_and_in_fresh_processes():
    model, x = _net(), torch.randn(40, 6)
    plans = []
    for _ in range(3):
        batching.clear_cache()
        plans.append(attribute(model, x, target=0, n_steps=50, memory_budget=2**28).plan)
    code = ("import json, torch; from torch import nn; from explain.attribution import attribute;"
            "torch.manual_seed(0);"
            "m = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).eval();"
            "p = attribute(m, torch.randn(40, 6), target=0, n_steps=50, memory_budget=2**28).plan;"
            "print(json.dumps([p.rows, p.bytes_per_row, p.budget, p.reason]))")
    env = {**os.environ, "PYTHONHASHSEED": "1"}
    fresh = [json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                       text=True, check=True, env=env).stdout)]
    assert len(set(plans)) == 1
    p = plans[0]
    assert fresh == [[p.rows, p.bytes_per_row, p.budget, p.reason]]
    assert (p.rows, p.reason) == (2048, "cache")


def test_a_first_call_computes_each_row_once():
    model, x = CountRows(_net(), grad_only=True).eval(), torch.randn(30, 6)
    first = attribute(model, x, target=0, n_steps=20)
    rows_first = list(model.rows)
    model.rows.clear()
    later = attribute(model, x, target=0, n_steps=20)
    assert first.timings["probe"] > 0 and later.timings["probe"] == 0
    assert first.plan == later.plan
    # the first call measures a forward of 4 samples (cached per model), then both calls run
    # 30 samples x 20 steps once
    assert rows_first[:1] == [4] and sum(rows_first[1:]) == sum(model.rows) == 30 * 20
    assert torch.allclose(first.values, later.values, atol=1e-6)


def test_a_simulated_out_of_memory_backs_off_and_the_values_stay_right():
    model = _net()

    class Tight(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            if x.shape[0] > 16:
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return self.model(x)

    x = torch.randn(12, 6)
    tight = attribute(Tight().eval(), x, target=0, n_steps=8, batch_size=64)
    free = attribute(model, x, target=0, n_steps=8, batch_size=64)
    assert torch.allclose(tight.values, free.values, atol=1e-6)
    # the failed pass held 12 samples x 4 of the 8 steps (48 rows, not the 64 given): the
    # retry halves that pass
    assert tight.warnings[0] == "out of memory: retried with 6 samples and 24 rows per pass"


def test_out_of_memory_halves_the_chunk_and_says_so():
    calls, notes = [], []

    def work(lo, hi, rows):
        calls.append((lo, hi, rows))
        if hi - lo > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return hi - lo

    out = batching.run_chunked(work, 5, chunk=8, rows=64, warnings=notes)
    assert out == [2, 2, 1] and sum(out) == 5
    # the chunk that ran held 5 samples (not 8): halved to 2, so one retry fits
    assert calls == [(0, 5, 64), (0, 2, 32), (2, 4, 32), (4, 5, 32)]
    assert notes == ["out of memory: retried with 2 samples and 32 rows per pass"]


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


def test_the_plan_sets_the_rows_of_captums_passes(monkeypatch):
    seen = []
    from captum import attr

    real = attr.IntegratedGradients._attribute

    def spy(self, inputs, *args, **kwargs):
        seen.append((inputs[0].shape[0], kwargs["n_steps"]))
        return real(self, inputs, *args, **kwargs)

    monkeypatch.setattr(attr.IntegratedGradients, "_attribute", spy)
    model = _net()
    fp = batching.Footprint(bytes_per_row=10**6, rows=64)   # 32 MiB / 4 MB -> 32 rows
    key = batching.plan_key(torch.zeros(1, 6), True, False)
    batching.remember(model, key, batching.plan_rows(fp, CPU, 2**30, cache=32 * 2**20,
                                                     threads=1))
    a = attribute(model, torch.randn(70, 6), target=0, n_steps=40)
    assert a.plan.rows == 32 and a.timings["probe"] == 0
    # chunks of 32, 32 and 6 samples; one step per pass for 32 samples, 5 for 6 (30 rows)
    assert seen == [(32, 1)] * 40 + [(32, 1)] * 40 + [(6, 5)] * 8
    assert torch.isfinite(a.values).all()


def test_fixed_steps_equal_captums_own_call():
    from captum.attr import IntegratedGradients

    model, x = _net(), torch.randn(9, 6)
    ours = attribute(model, x, target=1, n_steps=30, batch_size=64)
    theirs, delta = IntegratedGradients(model).attribute(
        x, target=1, n_steps=30, internal_batch_size=64, return_convergence_delta=True)
    assert torch.allclose(ours.values, theirs, atol=1e-6)
    assert torch.allclose(ours.convergence_delta, delta, atol=1e-6)


def _spy_passes(monkeypatch) -> list[tuple[int, int]]:
    from captum import attr

    seen: list[tuple[int, int]] = []
    real = attr.IntegratedGradients._attribute

    def spy(self, inputs, *args, **kwargs):
        seen.append((inputs[0].shape[0], kwargs["n_steps"]))
        return real(self, inputs, *args, **kwargs)

    monkeypatch.setattr(attr.IntegratedGradients, "_attribute", spy)
    return seen


def test_fixed_steps_split_the_steps_into_equal_passes(monkeypatch):
    seen = _spy_passes(monkeypatch)
    model, x = _net(), torch.randn(64, 6)
    given = attribute(model, x, target=0, n_steps=50, batch_size=1024)
    # 16 steps of 64 samples fit in 1024 rows: 4 passes, as equal as possible (not 16,16,16,2)
    assert seen == [(64, 13), (64, 13), (64, 12), (64, 12)]
    seen.clear()
    fp = batching.Footprint(bytes_per_row=100, rows=64, largest_per_row=100)
    batching.remember(model, batching.plan_key(x, True, False),
                      batching.plan_rows(fp, CPU, 2**30, cache=32 * 2**20, threads=1))
    planned = attribute(model, x, target=0, n_steps=50)
    # the plan of a net this small is the CPU cap, 2,048 rows: 3,200 rows in 2 passes of 25 steps
    assert planned.plan.rows == 2048 and seen == [(64, 25), (64, 25)]
    assert torch.allclose(planned.values, given.values, atol=1e-6)


def test_a_first_ig_call_runs_the_passes_of_a_later_call(monkeypatch):
    seen = _spy_passes(monkeypatch)
    model, x = _net(), torch.randn(64, 6)
    first = attribute(model, x, target=0, n_steps=50)
    # the 4-sample footprint plans 2048 rows (32 steps per pass, split equally): the first
    # call runs the passes a later call runs
    assert first.plan.rows == 2048
    assert seen == [(64, 25), (64, 25)]
    seen.clear()
    later = attribute(model, x, target=0, n_steps=50)
    assert later.plan == first.plan and seen == [(64, 25), (64, 25)]


def test_four_rows_plan_what_a_full_pass_measures_on_a_weight_heavy_net():
    # a 4096-wide layer: its transposed weight [6, 4096] is 24 KiB per row in 4 rows, more
    # than the layer's output (16 KiB per row); it only leads to the weight and is left out
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 4096), nn.Tanh(), nn.Linear(4096, 3)).eval()
    x = torch.randn(256, 6, requires_grad=True)
    with batching.measure(model) as footprint:
        torch.autograd.grad(model(x)[:, 0].sum(), x)
    full = footprint()
    first = attribute(model, x.detach()[:64], target=0, n_steps=50, memory_budget=2**30).plan
    cpu = torch.device("cpu")
    assert full.largest_per_row == first.largest_per_row == 4096 * 4
    assert first.rows == batching.plan_rows(full, cpu, 2**30, cache=first.cache).rows


def test_fixed_steps_without_captums_private_seam_use_its_public_batching(monkeypatch):
    from explain.attribution.methods import integrated_gradients as ig

    assert ig._STEP_SEAM                       # the captum installed here has the seam
    model, x = _net(), torch.randn(9, 6)
    seamed = attribute(model, x, target=1, n_steps=30, batch_size=64)
    monkeypatch.setattr(ig, "_STEP_SEAM", False)   # as a captum that renamed it would be

    public = attribute(model, x, target=1, n_steps=30, batch_size=64)

    assert torch.allclose(public.values, seamed.values, atol=1e-6)
    assert torch.allclose(public.convergence_delta, seamed.convergence_delta, atol=1e-6)


def test_the_overhead_rule_rounds_to_the_nearest_power_of_two_while_the_cache_holds():
    cpu, mib = torch.device("cpu"), 2**20
    # a GRU with attention pooling over 120 steps (measured footprint): its nodes' fixed cost
    # wants ~367 rows; 512 rows of its 90 KiB input projection are 45 MiB
    gruattn = batching.Footprint(bytes_per_row=281_056, rows=4, largest_per_row=92_160,
                                 op_elements_per_row=64, nodes=1576)
    plan = functools.partial(batching.plan_rows, gruattn, cpu, 2**30, cache=8 * mib, threads=1)
    assert (plan(whole_cache=32 * mib).rows, plan(whole_cache=32 * mib).reason) == \
        (256, "overhead")                                  # past a 32 MiB cache: rounded down
    assert plan(whole_cache=64 * mib).rows == 512          # within a 64 MiB one: the nearest
    # closer to the power below: rounded down whatever the cache
    near_down = dataclasses.replace(gruattn, nodes=1200)   # ~280 rows
    assert batching.plan_rows(near_down, cpu, 2**30, cache=8 * mib, threads=1,
                              whole_cache=2**30).rows == 256
    # without a given whole cache, the given cache bounds it (plans made from a cache alone)
    assert batching.plan_rows(gruattn, cpu, 2**30, cache=32 * mib, threads=1).rows == 256


def test_a_plan_re_made_for_a_new_budget_keeps_the_cache_bound_it_was_made_with():
    model, mib = nn.Linear(3, 2), 2**20
    bigru = batching.Footprint(bytes_per_row=145_496, rows=4, largest_per_row=30_720,
                               op_elements_per_row=64, nodes=1055)
    made = batching.plan_rows(bigru, CPU, 2**30, cache=8 * mib, threads=1,
                              whole_cache=32 * mib)
    assert (made.rows, made.whole_cache) == (512, 32 * mib)   # 15 MiB within the 32 MiB
    key = ((40, 5), torch.float32, "cpu", True, False, torch.get_num_threads())
    batching.remember(model, key, made)
    again = batching.cached_plan(model, key, budget=2**29)
    assert again is not None and (again.rows, again.whole_cache) == (512, 32 * mib)
