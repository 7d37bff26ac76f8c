"""What happened between records: every step tracked on the device, read at the next record."""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F
import torch.optim.optimizer as optim_module
from torch import nn

from explain.monitor import History, TrainingMonitor


def net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))


def data(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)


def loop(model, mon, steps: int, *, spike_at: int | None = None, clip: float | None = None,
         float_loss: bool = False, lr: float = 0.05):
    """SGD steps; at ``spike_at`` the loss is scaled 100x (a gradient 100x its size). Returns
    per step the total gradient norm before clipping and the loss."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    x, y = data()
    norms, losses = [], []
    for k in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y) * (100.0 if k == spike_at else 1.0)
        loss.backward()
        grads = [p.grad for p in model.parameters()]
        norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        losses.append(float(loss.detach()))
        mon.step(loss=losses[-1] if float_loss else loss.detach())
    return norms, losses


def test_a_spike_on_an_unsampled_step_is_seen_in_the_next_record():
    model = net()
    with TrainingMonitor(model, every=5) as mon:
        norms, losses = loop(model, mon, 16, spike_at=7)
    b = mon.history.between
    assert mon.history.steps == [0, 5, 10, 15]
    assert b["count"] == [1, 5, 5, 5]  # steps 0; 1-5; 6-10; 11-15
    assert b["grad_norm_max"][2] == pytest.approx(norms[7], rel=1e-5)
    assert b["grad_norm_max"][2] > 50 * max(norms[:7])
    assert b["grad_norm_mean"][1] == pytest.approx(sum(norms[1:6]) / 5, rel=1e-5)
    assert b["loss_max"][2] == pytest.approx(losses[7], rel=1e-6)
    assert b["loss_mean"][3] == pytest.approx(sum(losses[11:16]) / 5, rel=1e-6)
    assert mon.history.step_loss[2] == pytest.approx(losses[10])  # the sample itself: ordinary


def test_running_statistics_survive_folding_on_long_stretches():
    model = net()
    with TrainingMonitor(model, every=600) as mon:  # 599 unsampled steps: folded every 256
        norms, losses = loop(model, mon, 601, spike_at=300, lr=0.001)
    b = mon.history.between
    assert b["count"] == [1, 600]
    assert b["grad_norm_max"][1] == pytest.approx(norms[300], rel=1e-5)
    assert b["grad_norm_mean"][1] == pytest.approx(sum(norms[1:]) / 600, rel=1e-4)
    assert b["loss_max"][1] == pytest.approx(losses[300], rel=1e-6)
    assert len(mon._tracker._w) < 256 and len(mon._losses._kept) < 256


def test_gradient_norms_are_taken_before_clipping_and_clipping_is_flagged():
    model = net()
    with TrainingMonitor(model, every=4) as mon:
        norms, _ = loop(model, mon, 9, spike_at=6, clip=0.1)
    h = mon.history
    assert h.between["grad_norm_max"][2] == pytest.approx(norms[6], rel=1e-5)  # not 0.1
    assert min(norms) > 0.1  # so every record saw a clipped gradient
    assert h.meta["clipping"] is True and h.meta["clipped_records"] == 3
    total = [sum(v * v for v in (h.layers[n]["grad_norm"][0] for n in h.layers)) ** 0.5]
    assert total[0] == pytest.approx(norms[0], rel=1e-5)  # the per-layer norms too

    model = net()
    with TrainingMonitor(model, every=4) as mon:
        loop(model, mon, 9, clip=1e6)  # a clipping call that never clips
    assert mon.history.meta["clipping"] is False and mon.history.meta["clipped_records"] == 0


def test_with_gradient_accumulation_the_accumulated_gradient_is_measured():
    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = data(32)
    expected = []
    with TrainingMonitor(model, every=3) as mon:
        for _ in range(4):
            opt.zero_grad()
            for part in range(4):  # four micro-batches per optimizer step
                xb, yb = x[part * 8:(part + 1) * 8], y[part * 8:(part + 1) * 8]
                (F.cross_entropy(model(xb), yb) / 4).backward()
            expected.append(float(torch.stack([p.grad.norm() for p in model.parameters()])
                                  .norm()))
            opt.step()
            mon.step()
    b = mon.history.between
    assert b["count"] == [1, 3]
    assert b["grad_norm_max"][1] == pytest.approx(max(expected[1:4]), rel=1e-5)
    assert b["loss_max"] == [None, None]  # step() without loss=


def test_gradients_cleared_before_step_still_give_norms():
    # opt.step(); opt.zero_grad(); mon.step(): p.grad is None when the monitor is called
    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = data()
    expected = []
    with TrainingMonitor(model, every=2) as mon:
        for _ in range(3):
            F.cross_entropy(model(x), y).backward()
            first = model[0]  # the layer's norm: weight and bias together
            expected.append(float(torch.stack([first.weight.grad.norm(),
                                               first.bias.grad.norm()]).norm()))
            opt.step()
            opt.zero_grad()
            mon.step()
    grad = mon.history.layers["0"]["grad_norm"]
    assert grad[0] == pytest.approx(expected[0], rel=1e-5)
    assert grad[1] == pytest.approx(expected[2], rel=1e-5)
    assert mon.history.between["grad_norm_max"][1] is not None


def test_float_losses_are_tracked_too():
    model = net()
    with TrainingMonitor(model, every=5) as mon:
        _, losses = loop(model, mon, 11, spike_at=3, float_loss=True)
    assert mon.history.between["loss_max"][1] == pytest.approx(losses[3])
    assert mon.history.between["loss_mean"][2] == pytest.approx(sum(losses[6:11]) / 5)


def test_the_tracked_update_ratio_is_a_lower_bound_of_the_exact_one():
    model = net()
    with TrainingMonitor(model, every=1) as mon:  # every step sampled: exact ratios known
        loop(model, mon, 6, lr=0.5)
    h = mon.history
    for i in range(6):
        exact = max(h.layers[n]["update_ratio"][i] for n in h.layers)
        tracked = h.between["update_ratio_max"][i]
        assert 0 < tracked <= exact * (1 + 1e-5)


class _SyncCounter:
    """Counts calls of the tensor methods that copy a value to the host (a sync on a GPU)."""

    NAMES = ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__")

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.on = False

    @contextlib.contextmanager
    def patched(self):
        originals = {name: getattr(torch.Tensor, name) for name in self.NAMES}

        def wrap(name, fn):
            def counted(self_tensor, *args, **kwargs):
                if counter.on:
                    counter.calls.append(name)
                return fn(self_tensor, *args, **kwargs)
            return counted
        counter = self
        try:
            for name, fn in originals.items():
                setattr(torch.Tensor, name, wrap(name, fn))
            yield self
        finally:
            for name, fn in originals.items():
                setattr(torch.Tensor, name, fn)


def test_unsampled_steps_never_read_a_value_to_the_host():
    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)  # plain SGD reads no value itself
    x, y = data()
    counter = _SyncCounter()
    per_step = []
    with counter.patched(), TrainingMonitor(model, every=4) as mon:
        for _ in range(9):
            counter.on, counter.calls = True, []
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            mon.step(loss=loss.detach())  # forward, backward (the tracking hook) and step()
            counter.on = False
            per_step.append(len(counter.calls))
    assert [n == 0 for n in per_step] == [False, True, True, True, False, True, True, True,
                                          False]
    assert mon.history.between["count"] == [1, 4, 4]


def test_histories_without_between_still_load_and_continue():
    model = net()
    with TrainingMonitor(model, every=2) as mon:
        loop(model, mon, 5)
    old = mon.history.to_dict()
    del old["between"]  # written before the running statistics existed
    h = History.from_dict(old)
    assert h.between == {}
    with TrainingMonitor(model, every=2, history=h) as mon2:
        loop(model, mon2, 4)
    b = mon2.history.between
    assert mon2.history.steps == [0, 2, 4, 6, 8]  # resumed at step 5: the grid goes on
    assert b["count"] == [None, None, None, 2, 2]   # steps 5-6, 7-8
    assert History.from_json(mon2.history.to_json()) == mon2.history


def test_a_between_column_of_the_wrong_length_is_rejected():
    from explain.errors import CorruptRunError

    model = net()
    with TrainingMonitor(model, every=2) as mon:
        loop(model, mon, 5)
    d = mon.history.to_dict()
    d["between"]["grad_norm_max"].pop()
    with pytest.raises(CorruptRunError, match=r"'between.grad_norm_max' \(one value per entry "
                                              r"of 'steps'\) must be a list of length 3"):
        History.from_dict(d)


def test_the_end_of_backward_hook_runs_once_per_backward_however_long_the_run():
    # the hooks are made once at start (a hook per step on the gradient accumulators piled up
    # there: n hooks ran at step n)
    model = net()
    first = next(model.parameters())
    with TrainingMonitor(model, every=50) as mon:
        calls = []
        finish = mon._tracker._finish
        mon._tracker._finish = lambda: (calls.append(1), finish())[1]
        loop(model, mon, 30)
        hooks = len(first._post_accumulate_grad_hooks)
    assert (len(calls), hooks) == (30, 1)
    assert first._post_accumulate_grad_hooks is None  # nothing left after close


def test_the_windowed_update_ratio_bounds_the_sustained_per_step_ratio():
    # weight norms are read every ratio_every (8) steps: the tracked value is the mean change
    # of the norm per step over the window, below the window's largest exact ratio and close to
    # the mean of the per-step bound | ||W_t|| - ||W_t-1|| | / ||W_t-1|| while the norm moves
    # steadily (a too-high learning rate)
    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    x, y = data()
    exact, bound = [], []
    with TrainingMonitor(model, every=16) as mon:
        for _ in range(17):
            before = [p.detach().clone() for p in model.parameters()]
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            ex, bd = [], []
            for i in (0, 2):  # the two Linear layers: weight and bias
                old, new = before[i:i + 2], [p.detach() for p in model.parameters()][i:i + 2]
                den = float(torch.sqrt(sum((o ** 2).sum() for o in old)))
                ex.append(float(torch.sqrt(sum(((n - o) ** 2).sum() for n, o in zip(new, old))))
                          / den)
                bd.append(abs(float(torch.sqrt(sum((n ** 2).sum() for n in new))) - den) / den)
            exact.append(max(ex))
            bound.append(bd)
            mon.step()
    tracked = mon.history.between["update_ratio_max"][1]  # steps 1-16: two windows of 8
    windows = [[b[j] for b in bound[w:w + 8]] for w in (1, 9) for j in (0, 1)]
    assert mon._tracker.ratio_every == 8
    assert tracked <= max(exact[1:])
    assert tracked == pytest.approx(max(sum(w) / 8 for w in windows), rel=0.2)


def test_a_spike_after_the_last_record_is_kept_at_close():
    model = net()
    with TrainingMonitor(model, every=10) as mon:  # records at 0 and 10; steps 11-17 after
        norms, losses = loop(model, mon, 18, spike_at=14)
    tail = mon.history.meta["between_tail"]
    assert mon.history.steps == [0, 10]
    assert tail["step"] == 17 and tail["count"] == 7
    assert tail["grad_norm_max"] == pytest.approx(norms[14], rel=1e-5)
    assert tail["loss_max"] == pytest.approx(losses[14], rel=1e-6)
    assert tail["loss_mean"] == pytest.approx(sum(losses[11:18]) / 7, rel=1e-6)
    again = History.from_dict(mon.history.to_dict())
    assert again.meta["between_tail"] == tail


def test_no_tail_when_the_last_step_was_a_record():
    model = net()
    with TrainingMonitor(model, every=5) as mon:
        loop(model, mon, 16)
    assert mon.history.steps[-1] == 15 and mon.history.meta["between_tail"] is None


@pytest.mark.parametrize(("clip", "clipped"), [(0.1, True), (1e6, False)])
def test_clipping_is_seen_when_the_loop_clears_gradients_before_step(clip, clipped):
    # opt.step(); opt.zero_grad(); mon.step(): no gradient left at step(), so the clipped
    # norm is read when optimizer.step() begins
    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = data()
    with TrainingMonitor(model, every=4) as mon:
        for _ in range(9):
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            opt.zero_grad()
            mon.step(loss=loss.detach())
    assert mon.history.meta["clipping"] is clipped
    assert mon.history.meta["clipped_records"] == (3 if clipped else 0)
    assert not optim_module._global_optimizer_pre_hooks  # removed after each record


class _Bag(nn.Module):
    """A sparse-gradient embedding (``sparse=True``) before a dense head."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.head = nn.Embedding(20, 8, sparse=True), nn.Linear(8, 3)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(self.emb(idx).mean(1))


def test_a_sparse_gradient_is_tracked_on_the_slow_path():
    model = _Bag()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)  # SGD accepts sparse gradients
    g = torch.Generator().manual_seed(2)
    idx, y = torch.randint(0, 20, (16, 4), generator=g), torch.randint(0, 3, (16,), generator=g)
    norms = []
    with TrainingMonitor(model, every=4) as mon:
        for _ in range(5):
            opt.zero_grad()
            loss = F.cross_entropy(model(idx), y)
            loss.backward()
            dense = [p.grad.to_dense() if p.grad.is_sparse else p.grad for p in model.parameters()]
            norms.append(float(torch.linalg.vector_norm(torch.stack([t.norm() for t in dense]))))
            opt.step()
            mon.step(loss=loss.detach())
    assert model.emb.weight.grad.is_sparse
    b = mon.history.between
    assert b["count"] == [1, 4]
    assert b["grad_norm_max"][1] == pytest.approx(max(norms[1:5]), rel=1e-5)


def test_a_float64_model_is_tracked_in_its_own_precision():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3)).double()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = data()
    norms = []
    with TrainingMonitor(model, every=3) as mon:
        for _ in range(4):
            opt.zero_grad()
            loss = F.cross_entropy(model(x.double()), y)
            loss.backward()
            norms.append(float(torch.linalg.vector_norm(
                torch.stack([p.grad.norm() for p in model.parameters()]))))
            opt.step()
            mon.step(loss=loss.detach())
    b = mon.history.between
    assert b["count"] == [1, 3]
    assert b["grad_norm_mean"][1] == pytest.approx(sum(norms[1:4]) / 3, rel=1e-6)
