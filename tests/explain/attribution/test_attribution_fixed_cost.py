"""The fixed cost of a call: the one-sample input check runs once per model and input spec,
the whole batch runs without gradients only to find the predicted class, a new sample shape with passes to plan costs one measured forward of 4 samples (it
sizes the first pass), and the 4-row gradient check runs only when every value came out zero
(a non-zero value proves the gradient informative). Counted in forward passes, not timed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from explain.attribution import attribute, batching
from explain.errors import DataMismatchError
from tests.fixtures.models import Rounding


class Count(nn.Module):
    """Wraps a model and records (rows, gradients on) for every forward call."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.calls = model, []

    def forward(self, x):
        self.calls.append((int(x.shape[0]), torch.is_grad_enabled()))
        return self.model(x)


def _counted() -> Count:
    torch.manual_seed(0)
    batching.clear_cache()
    return Count(nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))).eval()


def test_a_given_target_runs_one_row_without_gradients_and_none_runs_the_whole_batch():
    model, x = _counted(), torch.randn(12, 6)
    attribute(model, x, target=1, method="saliency")
    given = [rows for rows, grad in model.calls if not grad]
    model.calls.clear()
    a = attribute(model, x, method="saliency")
    predicted = [rows for rows, grad in model.calls if not grad]
    assert given == [1]                       # the input check on one row
    assert predicted == [12]                  # (remembered) ... the batch for the predicted class
    with torch.no_grad():
        assert torch.equal(a.target, model(x).argmax(1))


def test_the_gradient_check_runs_only_when_every_value_is_zero():
    model, x = _counted(), torch.randn(12, 6)
    grad_rows = []
    for step in range(3):
        model.calls.clear()
        if step == 2:
            with torch.no_grad():              # an in-place update, as an optimizer step
                model.model[0].weight.add_(0.1)
        attribute(model, x, target=0, method="saliency")
        grad_rows.append([rows for rows, grad in model.calls if grad])
    model.calls.clear()
    same = attribute(model, x, target=0, baselines=x, n_steps=4)   # x = baseline: all zero
    # 12 rows are one pass (nothing to plan, so no measured forward); a non-zero answer
    # proves the gradient informative, so no check runs, not even after the weights changed
    assert grad_rows == [[12], [12], [12]]
    # an all-zero answer runs the 4-row check, which finds the gradient informative
    assert [rows for rows, grad in model.calls if grad] == [48, 4]
    assert same.method == "integrated_gradients" and not same.values.any()


def test_a_new_sample_shape_is_measured_again():
    torch.manual_seed(0)
    model = Count(nn.Sequential(nn.Flatten(), nn.LazyLinear(3))).eval()
    model(torch.randn(1, 2, 3))                # materialise the lazy layer for [2, 3] samples
    model.calls.clear()
    for shape in ((2, 3), (3, 2), (3, 2)):
        attribute(model, torch.randn(5, *shape), target=0, n_steps=20)   # 100 rows: planned
    grads = [rows for rows, grad in model.calls if grad]
    # a forward of 4 samples sizes the first pass of each new shape, then the 5 x 20 rows
    assert grads == [4, 100, 4, 100, 100]


def test_a_model_whose_gradient_is_not_informative_falls_back_on_every_call():
    model = Rounding().eval()
    calls = [attribute(model, torch.randn(3, 4), target=0, method="saliency") for _ in range(2)]
    assert [a.method for a in calls] == ["feature_ablation", "feature_ablation"]
    assert all("gradient is zero everywhere although the output changes" in a.warnings[0]
               for a in calls)


def test_a_first_ig_call_adds_only_the_4_sample_forward_to_a_later_call():
    model, x = _counted(), torch.randn(30, 6)
    first = attribute(model, x, target=0, n_steps=20)
    calls_first = list(model.calls)
    model.calls.clear()
    later = attribute(model, x, target=0, n_steps=20)
    # input check (1 row, no gradients), the measured forward of 4 samples, whose footprint
    # is the plan (2048 rows: all 20 steps of the 30 samples in one pass); one completeness
    # delta (inputs and baselines); the later call remembers the input check
    assert calls_first == [(1, False), (4, True), (600, True), (30, False), (30, False)]
    assert model.calls == [(600, True), (30, False), (30, False)]
    assert first.plan == later.plan and first.plan.rows == 2048
    assert first.timings["probe"] > 0 and later.timings["probe"] == 0
    assert torch.allclose(first.values, later.values, atol=1e-6)
    assert torch.allclose(first.convergence_delta, later.convergence_delta, atol=1e-6)


def test_auto_steps_on_a_first_call_run_at_the_plan_of_the_4_sample_forward():
    model, x = _counted(), torch.randn(30, 6)
    attribute(model, x, target=0, n_steps="auto")
    grads = [rows for rows, grad in model.calls if grad]
    # the 4-sample footprint plans 2048 rows: the first round's 30 samples x 9 first-level
    # points are one pass
    assert grads[:2] == [4, 270]


def test_an_out_of_memory_in_a_first_calls_first_pass_backs_off_and_the_values_stay_right():
    net = _counted().model

    class Tight(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = net

        def forward(self, x):
            if torch.is_grad_enabled() and x.shape[0] > 16:
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return self.model(x)

    x = torch.randn(12, 6)
    tight = attribute(Tight().eval(), x, target=0, n_steps=8)
    free = attribute(net, x, target=0, n_steps=8, batch_size=64)
    assert torch.allclose(tight.values, free.values, atol=1e-6)
    # the first pass (12 samples x 8 steps), and 6 x 8 and 3 x 8 do not fit; 1 x 8 does; each
    # retry halves the pass that ran (96 rows), not the plan (the 2,048-row cap)
    assert list(tight.warnings) == [
        "out of memory: retried with 6 samples and 48 rows per pass",
        "out of memory: retried with 3 samples and 24 rows per pass",
        "out of memory: retried with 1 samples and 12 rows per pass"]


def test_clear_cache_makes_the_next_call_a_first_call():
    model, x = _counted(), torch.randn(12, 6)
    attribute(model, x, target=0, n_steps=20)
    batching.clear_cache()
    model.calls.clear()
    attribute(model, x, target=0, n_steps=20)
    # the measured forward of 4 samples runs again before the 12 x 20 rows
    assert [rows for rows, grad in model.calls if grad] == [4, 240]


def test_a_job_no_larger_than_the_probe_runs_in_one_pass_without_measuring():
    model, x = _counted(), torch.randn(40, 6)
    small = attribute(model, x, target=0, method="saliency")
    model.calls.clear()
    again = attribute(model, x, target=0, method="saliency")
    again_rows = [rows for rows, grad in model.calls if grad]
    big = attribute(model, torch.randn(100, 6), target=0, method="saliency")
    assert (small.plan.rows, small.plan.reason, small.timings["probe"]) == (40, "one pass", 0.0)
    assert again.plan == small.plan and again_rows == [40]
    # 100 rows are more than one unplanned pass: the 4-sample footprint plans them, cached
    assert big.plan.reason == "cache" and big.timings["probe"] > 0


def test_the_one_sample_input_check_runs_again_only_for_a_new_spec_or_changed_weights():
    model, x = _counted(), torch.randn(12, 6)
    checks = []
    for step in range(4):
        model.calls.clear()
        if step == 2:
            with torch.no_grad():              # an in-place update, as an optimizer step
                model.model[0].weight.add_(0.1)
        inputs = x.double() if step == 3 else x
        if step == 3:
            model.double()
        values = attribute(model, inputs, target=0, method="saliency").values
        checks.append([rows for rows, grad in model.calls if not grad])
        if step == 0:
            first = values
        if step == 1:
            again = values
    assert checks == [[1], [], [1], [1]]       # first, remembered, new weights, new dtype
    assert torch.equal(first, again)           # the same values, bit for bit


class Picky(nn.Module):
    """Takes samples whose first value is below 100; raises the way a model does otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        if bool((x[:, 0] >= 100).any()):
            raise ValueError("value out of range for this model")
        return self.fc(x)


def test_a_remembered_check_still_turns_a_model_error_into_the_typed_error():
    torch.manual_seed(0)
    model = Picky().eval()
    attribute(model, torch.zeros(3, 4), target=0, method="saliency")    # the check passes
    bad = torch.zeros(3, 4)
    bad[0, 0] = 200.0
    for method in ("saliency", "occlusion", "integrated_gradients"):
        with pytest.raises(DataMismatchError) as err:
            attribute(model, bad, target=0, method=method)
        assert str(err.value) == (
            "The model could not take the 'inputs' of attribute: expected (no model card: the "
            "model's own error follows). Got [3, 4] float32 instead. The model said: value out "
            "of range for this model")
        assert isinstance(err.value.__cause__, ValueError)


def test_a_model_error_a_later_sample_raises_stays_the_models_own_error():
    torch.manual_seed(0)
    model = Picky().eval()
    attribute(model, torch.zeros(3, 4), target=0, method="saliency")
    bad = torch.zeros(3, 4)
    bad[2, 0] = 200.0                           # the first sample passes the check, as before
    with pytest.raises(ValueError, match="value out of range"):
        attribute(model, bad, target=0, method="saliency")
