"""The fixed cost of a call: the whole batch runs without gradients only to find the predicted
class, and the 4-row gradient check runs once per model state and sample shape (a changed,
retrained or non-differentiable model is checked again). Counted in forward passes, not timed."""

from __future__ import annotations

import torch
from torch import nn

from explain.attribution import attribute, batching
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
    assert predicted == [1, 12]               # ... and the batch for the predicted class
    with torch.no_grad():
        assert torch.equal(a.target, model(x).argmax(1))


def test_the_gradient_check_runs_once_per_model_state_and_again_after_a_change():
    model, x = _counted(), torch.randn(12, 6)
    grad_rows = []
    for step in range(3):
        model.calls.clear()
        if step == 2:
            with torch.no_grad():              # an in-place update, as an optimizer step
                model.model[0].weight.add_(0.1)
        attribute(model, x, target=0, method="saliency")
        grad_rows.append([rows for rows, grad in model.calls if grad])
    # first call: the structure trace (1 row), the gradient check (4 rows), then the 12 samples
    assert grad_rows == [[1, 4, 12], [12], [4, 12]]


def test_a_new_sample_shape_is_checked_again():
    torch.manual_seed(0)
    model = Count(nn.Sequential(nn.Flatten(), nn.LazyLinear(3))).eval()
    model(torch.randn(1, 2, 3))                # materialise the lazy layer for [2, 3] samples
    model.calls.clear()
    attribute(model, torch.randn(5, 2, 3), target=0, method="saliency")
    attribute(model, torch.randn(5, 3, 2), target=0, method="saliency")
    grads = [rows for rows, grad in model.calls if grad]
    assert grads == [1, 4, 5, 1, 4, 5]


def test_a_model_whose_gradient_is_not_informative_falls_back_on_every_call():
    model = Rounding().eval()
    calls = [attribute(model, torch.randn(3, 4), target=0, method="saliency") for _ in range(2)]
    assert [a.method for a in calls] == ["feature_ablation", "feature_ablation"]
    assert all("gradient is zero everywhere although the output changes" in a.warnings[0]
               for a in calls)
