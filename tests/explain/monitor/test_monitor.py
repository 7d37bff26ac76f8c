"""Tests of explain.monitor: recorded values, hook hygiene, sampling, JSON, temporal curves."""

from __future__ import annotations

import json
import math
import time

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from explain.errors import CorruptRunError, InvalidInputError, InvalidTypeError
from explain.monitor import History, TrainingMonitor
from explain.monitor._pacer import Pacer

# ---------------------------------------------------------------------- tiny models and loops


def mlp() -> nn.Sequential:
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 8), nn.Sigmoid(),
                          nn.Linear(8, 3))
    with torch.no_grad():  # four dead ReLU units: zero weights, negative bias
        model[0].weight[:4] = 0
        model[0].bias[:4] = -1
    return model


def convnet() -> nn.Sequential:
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    with torch.no_grad():  # channel 0 dead
        model[0].weight[0] = 0
        model[0].bias[0] = -1
    return model


class GRUNet(nn.Module):
    def __init__(self, features: int = 5, hidden: int = 12, classes: int = 3) -> None:
        super().__init__()
        self.gru = nn.GRU(features, hidden, batch_first=True)
        self.drop = nn.Dropout(0.3)
        self.norm = nn.BatchNorm1d(hidden)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [batch, time, features]
        _, h = self.gru(x)
        return self.fc(self.norm(self.drop(h[-1])))


def batch(model: nn.Module, n: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    if isinstance(model, GRUNet):
        x = torch.randn(n, 7, 5, generator=g)
    elif isinstance(model[0], nn.Conv2d):
        x = torch.randn(n, 1, 8, 8, generator=g)
    else:
        x = torch.randn(n, 6, generator=g)
    return x, torch.randint(0, 3, (n,), generator=g)


def train(model: nn.Module, steps: int, mon: TrainingMonitor | None = None,
          on_step=None) -> None:
    x, y = batch(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for k in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if on_step is not None:
            on_step(k)
        if mon is not None:
            mon.step(loss=loss.detach(), target=y)


def hook_counts(model: nn.Module) -> list[tuple[int, ...]]:
    return [(len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks),
             len(m._forward_hooks_with_kwargs)) for m in model.modules()] + \
        [p._post_accumulate_grad_hooks is not None for p in model.parameters()]  # a residue


def norm(tensors) -> float:
    return math.sqrt(sum(float(t.detach().double().pow(2).sum()) for t in tensors))


# ---------------------------------------------------------------------- recorded values


@pytest.mark.parametrize("make", [mlp, convnet])
def test_recorded_values_equal_independent_computation(make):
    # Arrange: capture what the monitor should see, independently of it
    model = make()
    expected, prev, acts = [], {}, {}
    x, y = batch(model)
    acts_at = {}

    def grab(name):
        def hook(module, args, out):
            if torch.is_grad_enabled():
                acts[name] = out.detach().clone()
        return hook

    for name, module in model.named_modules():
        if isinstance(module, (nn.ReLU, nn.Sigmoid)) or name == str(len(model) - 1):
            module.register_forward_hook(grab(name))
    layers = {n: m for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
    prev = {n: [p.detach().clone() for p in m.parameters()] for n, m in layers.items()}
    with torch.no_grad():
        initial_loss = float(F.cross_entropy(model(x), y))

    def on_step(k):
        rec = {}
        for n, m in layers.items():
            ps = list(m.parameters())
            rec[n] = {"grad_norm": norm(p.grad for p in ps), "weight_norm": norm(ps),
                      "update_ratio": norm(p - q for p, q in zip(ps, prev[n])) / norm(prev[n])}
            prev[n] = [p.detach().clone() for p in ps]
        acts_at[k] = dict(acts)
        expected.append(rec)

    # Act
    with TrainingMonitor(model, every=1) as mon:
        train(model, 3, mon, on_step)
    h = mon.history

    # Assert
    assert h.steps == [0, 1, 2]
    assert list(h.layers) == list(layers)
    for k, rec in enumerate(expected):
        for n, metrics in rec.items():
            for metric, value in metrics.items():
                assert h.layers[n][metric][k] == pytest.approx(value, rel=1e-5), (n, metric, k)
    first = next(iter(layers))
    relu_out = acts_at[2][str(int(first) + 1)]
    unit_dim = 1
    dead = (relu_out == 0).movedim(unit_dim, -1).reshape(-1, relu_out.shape[unit_dim]).all(0)
    assert h.layers[first]["frac_zero"][2] == pytest.approx(float((relu_out == 0).float().mean()))
    assert h.layers[first]["frac_dead"][2] == pytest.approx(float(dead.float().mean()))
    assert h.layers[first]["frac_dead"][2] >= 0.25
    assert h.layers[first]["act_mean"][2] == pytest.approx(float(relu_out.mean()), rel=1e-5)
    assert h.layers[first]["act_std"][2] == pytest.approx(float(relu_out.std()), rel=1e-5)
    assert h.layer_info[first]["activation"] == "relu"
    last = list(layers)[-1]
    assert h.layer_info[last]["activation"] is None
    assert h.layers[last]["frac_zero"] == [None] * 3
    assert h.layers[last]["act_mean"][2] == pytest.approx(float(acts_at[2][last].mean()), rel=1e-5)
    assert h.step_loss[0] == pytest.approx(initial_loss, rel=1e-5)


def test_sigmoid_saturation_and_layer_info():
    model = mlp()
    with torch.no_grad():
        model[2].weight.mul_(40)  # push most sigmoid outputs into saturation
    out = {}
    model[3].register_forward_hook(lambda m, a, o: out.setdefault("s", o.detach().clone()))
    with TrainingMonitor(model, every=5) as mon:
        train(model, 1, mon)
    s = out["s"]
    sat = float(((s < 0.01) | (s > 0.99)).float().mean())
    h = mon.history
    assert h.layers["2"]["frac_saturated"][0] == pytest.approx(sat)
    assert sat > 0.3
    assert h.layers["2"]["frac_zero"][0] is None
    assert h.layer_info == {
        "0": {"type": "Linear", "activation": "relu", "num_params": 112, "index": 0},
        "2": {"type": "Linear", "activation": "sigmoid", "num_params": 136, "index": 1},
        "4": {"type": "Linear", "activation": None, "num_params": 27, "index": 2}}


def test_shared_activation_module_is_attributed_by_execution_order():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.out, self.act = nn.Linear(4, 4), nn.Linear(4, 4), \
                nn.Linear(4, 2), nn.Tanh()

        def forward(self, x):
            return self.out(self.act(self.b(self.act(self.a(x)))))

    model = Shared()
    with TrainingMonitor(model, every=1) as mon:
        model(torch.randn(8, 4)).sum().backward()
        mon.step()
    info = mon.history.layer_info
    assert (info["a"]["activation"], info["b"]["activation"], info["out"]["activation"]) == \
        ("tanh", "tanh", None)


def test_norm_layers_on_request_and_text_models():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 6 * 6, 3))
    with TrainingMonitor(model, every=1) as mon:
        train(model, 1, mon)
    assert list(mon.history.layers) == ["0", "4"]
    assert mon.history.layer_info["0"]["activation"] == "relu"  # across the BatchNorm
    with TrainingMonitor(model, every=1, include_norm=True) as mon:
        train(model, 1, mon)
    assert list(mon.history.layers) == ["0", "1", "4"]
    assert mon.history.layer_info["1"] == {"type": "BatchNorm2d", "activation": "relu",
                                           "num_params": 8, "index": 1}

    class Text(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, self.fc = nn.Embedding(20, 6, padding_idx=0), nn.Linear(6, 2)

        def forward(self, ids):  # ids: [batch, length] int64
            return self.fc(self.embed(ids).mean(1))

    text = Text()
    ids = torch.randint(0, 20, (8, 5))
    with TrainingMonitor(text, every=1) as mon:
        F.cross_entropy(text(ids), torch.zeros(8, dtype=torch.long)).backward()
        mon.step()
    emb = text.embed(ids).detach()
    assert mon.history.layers["embed"]["act_mean"][0] == pytest.approx(float(emb.mean()))
    assert mon.history.layers["embed"]["grad_norm"][0] == \
        pytest.approx(float(text.embed.weight.grad.norm()))
    assert mon.history.temporal == []  # token ids: no BPTT curve


# ---------------------------------------------------------------------- hook hygiene


def test_hooks_removed_after_normal_exit_and_after_exception():
    model = GRUNet()
    before = hook_counts(model)
    with TrainingMonitor(model, every=2) as mon:
        assert hook_counts(model) != before  # armed for step 0
        train(model, 3, mon)
    assert hook_counts(model) == before

    with pytest.raises(RuntimeError, match="boom"), TrainingMonitor(model, every=1) as mon:
        train(model, 1, mon)
        raise RuntimeError("boom")
    assert hook_counts(model) == before
    with pytest.raises(InvalidInputError, match="after close"):
        mon.step()


def test_hooks_are_armed_only_for_sampled_steps():
    model = mlp()
    bare = hook_counts(model)
    # between samples, a post-accumulate-grad hook on the first and the last parameter (made
    # once, at start) tracks every step's gradient norm
    n = len(list(model.parameters()))
    tracking = bare[:-n] + [True] + bare[-n + 1:-1] + [True]
    seen = []
    with TrainingMonitor(model, every=4) as mon:
        train(model, 8, mon, on_step=lambda k: seen.append(hook_counts(model)))
    # on_step runs before mon.step(k): the sampling hooks are present during steps 0 and 4 only
    assert [counts != tracking for counts in seen] == [True, False, False, False, True, False,
                                                        False, False]
    assert hook_counts(model) == bare


def test_model_mode_params_and_rng_are_unchanged_by_the_monitor():
    # Same seed, same loop, with and without the monitor: bitwise equal parameters and buffers,
    # although the monitor runs extra BPTT passes through dropout and BatchNorm.
    def run(monitored: bool) -> tuple[dict, torch.Tensor]:
        torch.manual_seed(3)
        model = GRUNet()
        if monitored:
            with TrainingMonitor(model, every=2) as mon:
                train(model, 6, mon)
                mon.log_epoch()
                train(model, 3, mon)
            assert len(mon.history.temporal) == 2
        else:
            train(model, 9)
        return model.state_dict(), torch.rand(1)

    bare, monitored = run(False), run(True)
    assert monitored[1] == bare[1]
    for key, value in bare[0].items():
        assert torch.equal(value, monitored[0][key]), key

    model = GRUNet().eval()
    with TrainingMonitor(model, every=1) as mon:
        train(model, 2, mon)
    assert not model.training and len(mon.history.temporal) == 1


# ---------------------------------------------------------------------- special training set-ups


def test_frozen_layers_and_parameters_without_grad():
    class WithUnused(nn.Sequential):
        def __init__(self):
            super().__init__(*mlp())
            self.register_module("unused", nn.Linear(3, 3))  # trainable, never called

        def forward(self, x):
            for module in list(self)[:-1]:
                x = module(x)
            return x

    model = WithUnused()
    model[0].requires_grad_(False)      # a frozen layer
    model[2].bias.requires_grad_(False)  # a frozen parameter in a trained layer
    with TrainingMonitor(model, every=1) as mon:
        train(model, 2, mon)
    h = mon.history
    assert h.layers["0"]["grad_norm"] == [None, None]
    assert h.layers["0"]["update_ratio"] == [None, None]
    assert h.layers["0"]["weight_norm"][1] == pytest.approx(norm(model[0].parameters()))
    assert h.layers["2"]["grad_norm"][1] == pytest.approx(model[2].weight.grad.norm().item())
    assert h.layers["unused"]["grad_norm"] == [None, None]
    assert h.layers["unused"]["update_ratio"] == [0.0, 0.0]
    assert h.layers["unused"]["act_mean"] == [None, None]
    assert h.meta["num_trainable"] == h.meta["num_params"] - 112 - 8


def test_gradient_accumulation_records_the_accumulated_gradient():
    model = mlp()
    x, y = batch(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with TrainingMonitor(model, every=1) as mon:
        for _ in range(2):
            opt.zero_grad()
            for part in (slice(0, 12), slice(12, 24)):
                (F.cross_entropy(model(x[part]), y[part]) / 2).backward()
            expected = norm(p.grad for p in model[4].parameters())
            opt.step()
            mon.step()
    assert mon.history.layers["4"]["grad_norm"][1] == pytest.approx(expected, rel=1e-6)
    assert mon.history.step_loss == [None, None]


@pytest.mark.parametrize("in_place", [False, True])
def test_compiled_models_are_never_hooked_inside(in_place):
    # TorchDynamo does not guard on hooks: hooks inside compiled code would be traced into its
    # graphs (measured: a compiled MLP trained 3x slower monitored). Only what autograd and the
    # eager wrapper give is recorded there: gradient, weight and update statistics.
    model = mlp()
    if in_place:
        model.compile(backend="eager")
        compiled = model
    else:
        compiled = torch.compile(model, backend="eager")
    inner = [m for m in model.modules() if m is not model]
    x, y = batch(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    seen = []
    with TrainingMonitor(compiled, every=2) as mon:
        for _ in range(4):
            opt.zero_grad()
            loss = F.cross_entropy(compiled(x), y)
            loss.backward()
            opt.step()
            seen.append(sum(len(m._forward_hooks) for m in inner)
                        + len(model._forward_hooks) * in_place)
            mon.step(loss=loss.detach())
    torch._dynamo.reset()
    h = mon.history
    assert seen == [0, 0, 0, 0]  # also on the sampled steps 0 and 2
    assert h.meta["compiled_modules"] == len(list(model.modules()))
    layer = h.layers[next(iter(h.layers))]
    assert len(h.steps) == 2 and all(v > 0 for v in layer["grad_norm"] + layer["weight_norm"])
    assert layer["update_ratio"][0] > 0 and layer["act_mean"] == [None, None]


def test_weight_snapshots_stay_within_their_memory_limit():
    # layer bytes: "0" 448, "2" 544, "4" 108 (float32); 600 bytes hold "0" + "4", or "2"
    model = mlp()
    with TrainingMonitor(model, every=1, max_snapshot_bytes=600) as mon:
        train(model, 3, mon)
    ratios = {name: rows["update_ratio"] for name, rows in mon.history.layers.items()}
    assert [r is not None for r in ratios["0"]] == [True, False, True]
    assert [r is not None for r in ratios["2"]] == [False, True, False]  # its turn comes
    assert [r is not None for r in ratios["4"]] == [True, False, True]
    assert mon.history.meta["snapshot_limited"] is True
    with TrainingMonitor(model, every=1, max_snapshot_bytes=None) as mon:
        train(model, 1, mon)
    assert all(rows["update_ratio"][0] > 0 for rows in mon.history.layers.values())
    assert mon.history.meta["snapshot_limited"] is False
    with pytest.raises(InvalidInputError, match="max_snapshot_bytes"):
        TrainingMonitor(model, max_snapshot_bytes=-1).start()


def test_gradient_norms_are_taken_before_clipping():
    model = mlp()
    x, y = batch(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with TrainingMonitor(model, every=1) as mon:
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        before = norm(p.grad for p in model[4].parameters())
        total = float(nn.utils.clip_grad_norm_(model.parameters(), max_norm=1e-3))
        assert norm(p.grad for p in model[4].parameters()) < 1e-3 < total
        opt.step()
        mon.step()
    assert mon.history.layers["4"]["grad_norm"][0] == pytest.approx(before, rel=1e-6)
    layers = [mon.history.layers[name]["grad_norm"][0] for name in ("0", "2", "4")]
    assert math.sqrt(sum(v * v for v in layers)) == pytest.approx(total, rel=1e-5)


def test_nonfinite_values_are_counted_not_dropped():
    model = mlp()

    def bad_grad(g: torch.Tensor) -> torch.Tensor:  # as if backward overflowed
        g = g.clone()
        g[0, :3] = float("inf")
        g[1, 0] = float("nan")
        return g

    with TrainingMonitor(model, every=1) as mon:
        train(model, 1, mon)
        handle = model[2].weight.register_hook(bad_grad)
        train(model, 1, mon)
        handle.remove()
        model.zero_grad()
        mon.step(loss=torch.tensor(float("nan")))
        mon.step(loss=float("inf"))
    h = mon.history
    assert h.nonfinite["grad"] == 4
    assert math.isnan(h.layers["2"]["grad_norm"][1])
    assert h.nonfinite["loss"] == 2
    assert math.isnan(h.step_loss[2]) and h.step_loss[3] == math.inf
    assert h.nonfinite["weight"] == 3 * 4  # SGD made 4 weights non-finite; 3 records since

    with torch.no_grad():
        model[0].weight[0, 0] = float("inf")
    with TrainingMonitor(model, every=1) as mon:
        train(model, 1, mon)
    assert mon.history.nonfinite["weight"] >= 1
    assert mon.history.nonfinite["activation"] >= 1


def test_amp_scaler_gradients_are_unscaled_and_overflows_kept_apart():
    model = mlp()
    x, y = batch(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    with TrainingMonitor(model, every=1, scaler=scaler) as mon:
        for k in range(2):
            opt.zero_grad()
            overflow = model[4].bias.register_hook(  # at k == 1 backward overflows: the
                lambda g, k=k: g.index_fill(0, torch.tensor([0]), float("inf")) if k else g)
            scaler.scale(F.cross_entropy(model(x), y)).backward()  # scaler skips that step
            overflow.remove()
            scaled = norm(p.grad for p in model[4].parameters())
            scaler.step(opt)
            scaler.update()
            mon.step()
            if k == 0:
                assert mon.history.layers["4"]["grad_norm"][0] == \
                    pytest.approx(scaled / 1024.0, rel=1e-5)
    assert mon.history.meta["amp"] is True
    assert mon.history.meta["amp_overflow_values"] >= 1
    assert mon.history.nonfinite["grad"] == 0
    assert mon.history.layers["4"]["update_ratio"][1] == 0.0


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_other_parameter_dtypes(dtype):
    model = mlp().to(dtype)
    x, y = batch(model)
    with TrainingMonitor(model, every=1) as mon:
        F.cross_entropy(model(x.to(dtype)).float(), y).backward()
        mon.step()
    expected = norm(p.grad.float() for p in model[2].parameters())
    assert mon.history.layers["2"]["grad_norm"][0] == pytest.approx(expected, rel=1e-3)
    assert mon.history.layers["0"]["frac_dead"][0] >= 0.25
    assert mon.history.meta["dtype"] == str(dtype).replace("torch.", "")


# ---------------------------------------------------------------------- sampling


@pytest.mark.parametrize("every,steps,expected", [(3, 10, [0, 3, 6, 9]), (1, 3, [0, 1, 2]),
                                                  (20, 5, [0])])
def test_every_samples_exactly_the_expected_steps(every, steps, expected):
    model = mlp()
    with TrainingMonitor(model, every=every) as mon:
        train(model, steps, mon)
    assert mon.history.steps == expected
    assert all(len(v) == len(expected) for m in mon.history.layers.values() for v in m.values())
    assert mon.history.meta["total_steps"] == steps


def test_auto_every_stays_within_bounds():
    model = mlp()
    with TrainingMonitor(model, max_every=6) as mon:
        train(model, 40, mon)
    gaps = [b - a for a, b in zip(mon.history.steps, mon.history.steps[1:])]
    assert mon.history.steps[0] == 0
    assert gaps and all(1 <= g <= 6 for g in gaps)
    assert 1 <= mon.every_ <= 6 and mon.history.meta["every"] == "auto"


def test_log_epoch_shortens_an_interval_chosen_before_the_epoch_length_was_known():
    model = mlp()
    with TrainingMonitor(model) as mon:
        train(model, 1, mon)                      # step 0 sampled
        pacer = mon._pacer                        # pretend: expensive sampling, every 100
        pacer.periods.extend([(0.01, 0.01)] * 32)
        pacer.costs.extend([(0.005, 0.005)] * 8)  # half a step: budget says every 25
        pacer.every, pacer.next_sampled = 100, 100
        train(model, 4, mon)                      # steps 1..4
        mon.log_epoch()                           # 5-step epochs: at least one per epoch
        assert mon.every_ == 5
        train(model, 1, mon)                      # step 5 is sampled, hooks armed in time
    assert mon.history.steps == [0, 5]
    assert mon.history.layers["0"]["act_mean"][1] is not None


def test_an_unsampled_step_reads_no_clock(monkeypatch):
    import time
    model = mlp()
    reads = []
    with TrainingMonitor(model, every=5) as mon:
        train(model, 1, mon)  # step 0: sampled
        for name in ("perf_counter", "thread_time"):
            real = getattr(time, name)
            monkeypatch.setattr(time, name, lambda real=real: reads.append(1) or real())
        train(model, 3, mon)  # steps 1-3: unsampled, and step 4 is not due yet
        assert reads == []
        train(model, 1, mon)  # step 4 arms step 5 and times the stretch of steps 1-4
        assert reads and len(mon._pacer.periods) == 1
        monkeypatch.undo()


def test_close_reports_what_the_monitor_spent():
    model = GRUNet()
    start = time.perf_counter()
    with TrainingMonitor(model) as mon:
        for _ in range(3):
            train(model, 8, mon)
            mon.log_epoch()
    elapsed = time.perf_counter() - start
    meta = mon.history.meta
    assert meta["total_steps"] == 24 and meta["every"] == "auto"
    assert 0 < meta["monitor_seconds"] < elapsed
    assert meta["temporal_seconds"] <= meta["monitor_seconds"]
    assert meta["overhead_estimate"] is not None and meta["overhead_estimate"] > 0
    h = mon.history
    assert h.monitor_cost() == (f"The monitor sampled {len(h.steps)} of 24 steps; their extra "
                                f"work took {meta['monitor_seconds']:.2g} s.")
    for _ in range(3):
        h.epochs["seconds"][_] = 2.0
    assert h.monitor_cost().endswith(f", {meta['monitor_seconds'] / 6:.1%} of the 6 s of "
                                     "training.")
    assert History().monitor_cost() is None


def pacer_with(cost: float, period: float = 0.01, budget: float = 0.02, **kw) -> Pacer:
    pacer = Pacer(None, budget=budget, **kw)
    for _ in range(3):
        pacer.record_period(period)
    pacer.record_cost(cost)
    return pacer


def test_pacer_keeps_the_budget_over_the_whole_run():
    pacer = Pacer(None, budget=0.02, max_every=200)
    for _ in range(5):
        pacer.record_period(0.010, 0.004)   # wall, cpu
    pacer.record_cost(0.001, 0.0008)  # 10 % of a step in wall time, 20 % in CPU time
    pacer.advance(0)                  # the worse one: every = 0.2 / 0.02 = 10
    assert (pacer.every, pacer.next_sampled) == (10, 10)
    pacer.costs.clear()
    pacer.record_cost(0.002)          # now 50 % (CPU): every 25 from here on, but the two
    pacer.advance(10)                 # records so far cost 2 * 0.5 steps = 2 % of 50 steps
    assert (pacer.every, pacer.next_sampled) == (40, 50)
    pacer.advance(50)                 # 3 records: 75 steps
    assert (pacer.every, pacer.next_sampled) == (25, 75)
    pacer.record_cost(10.0)           # median cost 5 s: huge -> capped at max_every
    pacer.advance(75)
    assert pacer.every == 200
    fixed = Pacer(4)
    fixed.record_cost(100.0)
    fixed.advance(0)
    assert fixed.every == 4


def test_pacer_records_per_epoch_when_affordable_and_a_minimum_of_records():
    few = pacer_with(0.005)           # half a step: budget says every 25
    few.set_epoch_length(60, 0)
    few.advance(0)                    # 3 per 60-step epoch (every 20) costs 2.5 % <= 1.5 x 2 %
    assert few.every == 20
    one = pacer_with(0.010)           # a whole step: budget says 50
    one.set_epoch_length(40, 0)
    one.advance(0)                    # 3 per epoch: 7.7 %, too much; 1 per epoch: 2.5 %, ok
    assert one.every == 40
    late = pacer_with(0.1)            # ten steps: budget says 500, capped at 200
    late.advance(8)                   # every 200 before the epoch length is known
    assert late.every == 200
    late.set_epoch_length(23, 23)     # 23-step epochs: one per epoch costs 43 %, but the
    assert (late.every, late.next_sampled) == (23, 31)  # first 5 records come once per epoch
    late.set_epoch_length(23, 30)     # the same length again: nothing changes
    assert (late.every, late.next_sampled) == (23, 31)
    late.set_epoch_length(20, 40)     # shorter epochs: due at 8 + 20, but never in the past
    assert late.next_sampled == 40
    for step in (40, 60, 80):
        late.advance(step)
        assert late.next_sampled == step + 20
    late.advance(100)                 # the fifth record: from now on the budget (and payback)
    assert (late.every, late.next_sampled) == (200, 300)


def test_pacer_budget_covers_the_every_step_tracking_after_the_first_records():
    pacer = pacer_with(0.005, max_every=1000)  # half a step: the budget (2 %) says every 25
    assert pacer.tracking_share() == 0.0 and pacer.records_budget() == 0.02
    pacer.record_tracking(0.0001)              # tracking: 1 % of every step
    assert pacer.tracking_share() == pytest.approx(0.01)
    for step in (0, 25, 50, 75):               # the first 5 records: the whole budget
        pacer.advance(step)
        assert pacer.next_sampled == step + 25
    pacer.advance(100)                         # later ones: 2 % - 1 % = 1 %, every 50
    assert (pacer.every, pacer.next_sampled) == (50, 150)
    assert pacer.estimated_overhead() == pytest.approx(0.5 / 50 + 0.01)
    pacer.tracking.clear()
    pacer.record_tracking(0.0003)              # tracking alone 3 %: records keep a quarter
    assert pacer.records_budget() == pytest.approx(0.005)
    pacer.advance(150)
    assert (pacer.every, pacer.next_sampled) == (100, 250)


def test_the_monitor_times_its_every_step_tracking_on_sampled_steps_only():
    model = GRUNet()
    with TrainingMonitor(model) as mon:
        for _ in range(3):
            train(model, 8, mon)
            mon.log_epoch()
    tracking = mon._pacer.tracking
    assert len(tracking) == len(mon.history.steps)  # one timing per record
    assert all(wall > 0 and cpu >= 0 for wall, cpu in tracking)
    assert mon.history.meta["tracking_share"] == round(mon._pacer.tracking_share(), 5) > 0
    assert mon._tracker.timed == mon._pacer.is_sampled(mon._step)  # armed: the next is timed


# ---------------------------------------------------------------------- temporal curve


def test_temporal_curve_is_read_from_the_training_steps_own_backward():
    model = GRUNet().eval()  # eval: no dropout, BatchNorm per sample, so rows are independent
    x, y = batch(model)
    xs = x.clone().requires_grad_(True)  # the step's gradient: weights before the update
    (g,) = torch.autograd.grad(F.cross_entropy(model(xs), y, reduction="sum"), xs)
    with TrainingMonitor(model, every=1, temporal_samples=10) as mon:
        train(model, 1, mon)  # batch-mean loss: the monitor scales by the batch size
    temporal = mon.history.temporal
    assert len(temporal) == 1 and temporal[0]["step"] == 0
    assert len(temporal[0]["grad_norm"]) == x.shape[1]
    assert temporal[0]["grad_norm"] == pytest.approx(g.norm(dim=2).mean(0).tolist(), rel=1e-5)
    assert mon.history.meta["temporal_source"] == "training step"
    assert mon.history.layer_info["gru"]["activation"] == "tanh"
    assert mon.history.layers["gru"]["frac_saturated"][0] is not None
    assert mon.history.layers["gru"]["grad_norm"][0] == \
        pytest.approx(norm(p.grad for p in model.gru.parameters()), rel=1e-5)


def test_temporal_curve_falls_back_to_an_extra_pass_without_an_input_gradient():
    # A loop that differentiates the parameters only never computes d loss / d x: the monitor
    # notices and computes the curve with its own pass on temporal_samples sequences.
    model = GRUNet().eval()
    x, y = batch(model)
    params = list(model.parameters())
    opt = torch.optim.SGD(params, lr=0.1)
    with TrainingMonitor(model, every=1, temporal_samples=10) as mon:
        for _ in range(2):
            grads = torch.autograd.grad(F.cross_entropy(model(x), y), params)
            for p, grad in zip(params, grads):
                p.grad = grad
            opt.step()
            mon.step(target=y)
            xs = x[:10].clone().requires_grad_(True)
            (g,) = torch.autograd.grad(F.cross_entropy(model(xs), y[:10], reduction="sum"), xs)
            mon.log_epoch()
            if len(mon.history.temporal) == 1:
                expected = g.norm(dim=2).mean(0).tolist()
    assert [t["step"] for t in mon.history.temporal] == [0, 1]
    assert mon.history.temporal[0]["grad_norm"] == pytest.approx(expected, rel=1e-5)
    assert mon.history.meta["temporal_source"] == "extra pass"


def test_temporal_tap_leaves_in_place_ops_and_input_gradients_working():
    class InPlace(GRUNet):
        def forward(self, x):
            x.mul_(1.0)  # legal on the user's tensor; must stay legal on the tapped one
            return super().forward(x)

    model = InPlace().eval()
    x, y = batch(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with TrainingMonitor(model, every=1) as mon:
        for adversarial in (False, True):  # then the user also wants d loss / d x
            xb = x.clone().requires_grad_(adversarial)
            loss = F.cross_entropy(model(xb * 1 if adversarial else xb), y)
            loss.backward()
            opt.step()
            mon.step(loss=loss.detach())
            mon.log_epoch()
            assert (xb.grad is not None and bool(xb.grad.abs().sum() > 0)) == adversarial
    assert [t["step"] for t in mon.history.temporal] == [0, 1]
    assert mon.history.meta["temporal_source"] == "training step"


def test_temporal_curve_is_unscaled_with_a_grad_scaler():
    model = GRUNet().eval()
    x, y = batch(model)
    xs = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model(xs), y, reduction="sum"), xs)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    with TrainingMonitor(model, every=1, scaler=scaler) as mon:
        loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()  # d (1024 * loss) / dx reaches the tap
        scaler.step(opt)
        scaler.update()
        mon.step(loss=loss.detach())
    assert mon.history.temporal[0]["grad_norm"] == \
        pytest.approx(g.norm(dim=2).mean(0).tolist(), rel=1e-5)


class SeqFirstGRU(nn.Module):
    """PyTorch's default layout: input [time, batch, features]."""

    def __init__(self) -> None:
        super().__init__()
        self.gru, self.fc = nn.GRU(5, 12), nn.Linear(12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.gru(x)[1][-1])


def test_temporal_curve_of_a_sequence_first_model_runs_along_time():
    model = SeqFirstGRU()
    x, y = batch(GRUNet())                   # [24, 7, 5]
    x = x.transpose(0, 1).contiguous()       # [7, 24, 5]
    xs = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model(xs), y, reduction="sum"), xs)
    expected = g.norm(dim=2).mean(1)         # [7]: per time step, mean over the batch
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with TrainingMonitor(model, every=1) as mon:
        F.cross_entropy(model(x), y).backward()
        opt.step()
        mon.step(target=y)                    # from the step's own backward
        mon.log_epoch()
        mon._temporal.tap_ok = False          # as if the input gradient had not arrived
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        mon.step(target=y)                    # from the extra pass, on 16 sequences
        xs = x[:, :16].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(model(xs), y[:16], reduction="sum"), xs)
    first, second = mon.history.temporal
    assert first["grad_norm"] == pytest.approx(expected.tolist(), rel=1e-5)
    assert second["grad_norm"] == pytest.approx(g.norm(dim=2).mean(1).tolist(), rel=1e-5)
    assert mon.history.meta["temporal_source"] == "extra pass"


def test_no_temporal_curve_where_the_time_axis_is_unknown():
    conv = nn.Sequential(nn.Conv1d(5, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5, 3))
    per_step = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 7, 3))
    x, y = batch(GRUNet())  # [24, 7, 5]: a conv reads it as 7 channels, the MLP per step
    for model, xb in ((conv, x.transpose(1, 2)), (per_step, x)):
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with TrainingMonitor(model, every=1) as mon:
            F.cross_entropy(model(xb), y).backward()
            opt.step()
            mon.step(target=y)
        assert mon.history.temporal == [] and "temporal_source" not in mon.history.meta


def test_temporal_curve_averages_over_unpadded_sequences_only():
    model = GRUNet().eval()
    x, y = batch(model, n=4)
    x[0, 4:] = 0   # sequence 0 has length 4; time steps 5 and 6 are padding in all but one
    x[1:, 6:] = 0  # the last time step is padding everywhere
    xs = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model(xs), y, reduction="sum"), xs)
    norms = g.norm(dim=2)  # [4, 7]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with TrainingMonitor(model, every=1) as mon:
        F.cross_entropy(model(x), y).backward()
        opt.step()
        mon.step(target=y)
    curve = mon.history.temporal[0]["grad_norm"]
    assert curve[2] == pytest.approx(float(norms[:, 2].mean()), rel=1e-5)
    assert curve[5] == pytest.approx(float(norms[1:, 5].mean()), rel=1e-5)
    assert curve[6] == 0.0


def test_a_model_that_fails_the_bptt_pass_only_loses_the_curve():
    class Picky(GRUNet):
        def forward(self, x):
            if x.shape[0] != 24:
                raise RuntimeError("batch of 24 only")
            return super().forward(x.detach())  # no input gradient: the extra pass is needed

    model = Picky()
    with TrainingMonitor(model, every=1) as mon:
        train(model, 3, mon)
    assert mon.history.temporal == []
    assert mon.history.meta["temporal_error"] == "RuntimeError: batch of 24 only"
    assert mon.history.steps == [0, 1, 2]


def test_temporal_is_recorded_at_most_once_per_epoch():
    model = GRUNet()
    with TrainingMonitor(model, every=1) as mon:
        for _ in range(3):
            train(model, 3, mon)
            mon.log_epoch(train_loss=1.0)
    assert [t["step"] for t in mon.history.temporal] == [0, 3, 6]
    with TrainingMonitor(mlp(), every=1) as mon:
        train(mon.model, 2, mon)
    assert mon.history.temporal == []


# ---------------------------------------------------------------------- history and JSON


def test_json_round_trip_with_inf_and_nan():
    model = GRUNet()
    with TrainingMonitor(model, every=2) as mon:
        train(model, 3, mon)
        mon.log_epoch(train_loss=0.5, val_loss=float("inf"), lr=torch.tensor(0.1), extra=-1)
    h = mon.history
    h.layers["fc"]["grad_norm"][0] = float("nan")
    h.step_loss[1] = -math.inf
    text = h.to_json()
    json.loads(text)  # strict JSON
    json.dumps(h.to_dict(), allow_nan=False)
    back = History.from_json(text)
    assert back == h
    assert back.epochs["val_loss"] == [math.inf] and back.epochs["extra"] == [-1]
    assert math.isnan(back.layers["fc"]["grad_norm"][0]) and back.step_loss[1] == -math.inf
    assert back.epochs["lr"][0] == pytest.approx(0.1)
    assert {"path": "/epochs/val_loss/0", "value": "inf"} in h.to_dict()["nonfinite_values"]
    assert h.to_dict()["schema"] == 1


def test_histories_written_with_list_paths_still_load():
    # Arrange: the form History.to_dict wrote before the shared codec (paths as lists of keys)
    old = {"schema": 1, "epochs": {"epoch": [1, 2], "val_loss": [0.5, None]}, "steps": [0, 1],
           "step_loss": [None, 0.3], "layers": {"fc": {"grad_norm": [1.0, None]}},
           "layer_info": {"fc": {"type": "Linear", "activation": None}}, "temporal": [],
           "nonfinite": {"loss": 1}, "meta": {},
           "nonfinite_values": [{"path": ["epochs", "val_loss", 1], "value": "inf"},
                                {"path": ["step_loss", 0], "value": "nan"},
                                {"path": ["layers", "fc", "grad_norm", 1], "value": "-inf"}]}
    # Act
    h = History.from_dict(old)
    # Assert: values restored, and written back in the one convention (JSON pointers)
    assert h.epochs["val_loss"] == [0.5, math.inf] and math.isnan(h.step_loss[0])
    assert h.layers["fc"]["grad_norm"] == [1.0, -math.inf]
    assert h.to_dict()["nonfinite_values"] == [
        {"path": "/epochs/val_loss/1", "value": "inf"}, {"path": "/step_loss/0", "value": "nan"},
        {"path": "/layers/fc/grad_norm/1", "value": "-inf"}]


_numbers = st.one_of(st.none(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=True, allow_infinity=True))


@settings(max_examples=40, deadline=None)
@given(losses=st.lists(_numbers, max_size=6), grads=st.lists(_numbers, max_size=6),
       extra=_numbers, curve=st.lists(st.floats(allow_nan=True), max_size=5))
def test_json_round_trip_property(losses, grads, extra, curve):
    n = min(len(losses), len(grads))
    h = History(steps=list(range(n)), step_loss=losses[:n],
                layers={"fc": {"grad_norm": grads[:n]}},
                layer_info={"fc": {"type": "Linear", "activation": None}},
                temporal=[{"step": 0, "grad_norm": [c for c in curve if c is not None]}],
                meta={"note": extra})
    h.log_epoch(train_loss=extra, custom=extra)
    text = h.to_json()
    back = History.from_json(text)
    assert back == h and back.to_json() == text


def test_log_epoch_columns():
    h = History()
    h.log_epoch(train_loss=1.0)
    h.log_epoch(epoch=7, custom=2.5)
    assert h.epochs["epoch"] == [1, 7]
    assert h.epochs["custom"] == [None, 2.5] and h.epochs["train_loss"] == [1.0, None]
    assert h.epochs["val_acc"] == [None, None]
    with pytest.raises(InvalidTypeError, match="'train_loss' parameter of History.log_epoch"):
        h.log_epoch(train_loss="high")


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.pop("steps"), "'steps' are missing"),
    (lambda d: d.update(schema=99), "'schema' must be an int between 1 and 1. Got 99"),
    (lambda d: d.pop("schema"), "'schema' field is missing"),
    (lambda d: d["step_loss"].append(1.0), "'step_loss'"),
    (lambda d: d["layers"]["fc"]["grad_norm"].pop(), "'layers.fc.grad_norm'"),
    (lambda d: d["epochs"]["train_loss"].append(1.0), "same length"),
    (lambda d: d["steps"].__setitem__(0, "a"), "'steps' must be a list of ints"),
    (lambda d: d.update(nonfinite_values=[{"path": ["nope", 3], "value": "inf"}]),
     "does not point"),
    (lambda d: d.update(nonfinite_values=[{"path": ["steps"], "value": "big"}]), "'value'"),
    (lambda d: d["nonfinite"].update(grad=-1), "'nonfinite.grad' must be an int >= 0"),
    (lambda d: d.update(temporal=[{"grad_norm": []}]), "'temporal\\[0\\]'"),
])
def test_from_dict_rejects_damaged_histories_with_clear_errors(mutate, message):
    model = GRUNet()
    with TrainingMonitor(model, every=1) as mon:
        train(model, 2, mon)
        mon.log_epoch(train_loss=1.0)
    d = mon.history.to_dict()
    mutate(d)
    with pytest.raises(CorruptRunError, match=message):
        History.from_dict(d)


def test_from_json_and_from_dict_reject_non_histories():
    with pytest.raises(CorruptRunError, match="not valid JSON"):
        History.from_json("{nope")
    with pytest.raises(CorruptRunError, match="expects a dict. Got list"):
        History.from_dict([1, 2])


def test_resume_continues_the_step_count():
    model = mlp()
    with TrainingMonitor(model, every=2) as mon:
        train(model, 3, mon)
    with TrainingMonitor(model, every=2, history=History.from_json(mon.history.to_json())) as mon2:
        train(model, 3, mon2)
    assert mon2.history.steps == [0, 2, 4]  # the grid 0, every, 2 every, ... goes on
    assert mon2.history.meta["total_steps"] == 6
    with TrainingMonitor(model, every=3, history=History.from_json(mon2.history.to_json())) as m3:
        train(model, 1, m3)  # step 6: on the grid of every=3, sampled at once
    assert m3.history.steps == [0, 2, 4, 6]


def test_invalid_settings_raise_typed_errors():
    with pytest.raises(InvalidInputError, match="'every' parameter of TrainingMonitor must be an "
                                                "int >= 1. Got 0 instead"):
        TrainingMonitor(mlp(), every=0).start()
    with pytest.raises(InvalidTypeError, match="'model' parameter of TrainingMonitor"):
        TrainingMonitor("model").start()
    with pytest.raises(InvalidInputError, match="'budget'"):
        TrainingMonitor(mlp(), budget=0).start()
