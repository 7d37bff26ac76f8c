"""The one model-output adapter: every output form -> logits; the wrapper is transparent."""

from __future__ import annotations

import copy
from collections import OrderedDict

import pytest
import torch
from torch import nn

import explain
from explain._core.guard import ModelGuard
from explain._core.outputs import LogitsModel, logits_model, logits_of, unwrap
from explain._core.tensors import predict
from explain.errors import InvalidTypeError


class _Out:
    def __init__(self, logits):
        self.logits = logits


class Forms(nn.Module):
    """Linear logits returned in one of the accepted forms."""

    def __init__(self, form: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3, 2)
        self.form = form

    def forward(self, x):
        z = self.fc(x)
        return {"tensor": lambda: z, "dict": lambda: {"logits": z, "hidden": x},
                "ordered": lambda: OrderedDict(loss=None, logits=z),
                "attr": lambda: _Out(z), "tuple": lambda: (z, x), "list": lambda: [z]}[self.form]()


FORMS = ["tensor", "dict", "ordered", "attr", "tuple", "list"]


@pytest.mark.parametrize("form", FORMS)
def test_every_output_form_gives_the_same_logits(form):
    # Arrange
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    expected = Forms("tensor").fc(x)
    # Act
    got = logits_model(Forms(form))(x)
    # Assert
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("form", FORMS)
def test_attribute_and_predict_accept_every_output_form(form):
    # Arrange
    model = Forms(form).eval()
    x = torch.tensor([[1.0, 2.0, 3.0]])
    # Act
    a = explain.attribute(model, x, target=0, n_steps=16)
    logits = predict(model, x)
    # Assert: a linear model's IG from a zero baseline is x * w
    torch.testing.assert_close(a.values, x * model.fc.weight[0].detach())
    torch.testing.assert_close(logits, model.fc(x).detach())


def test_an_unusable_output_names_what_came_and_the_fix():
    # Act / Assert
    with pytest.raises(InvalidTypeError) as err:
        logits_of({"loss": torch.tensor(1.0)}, owner="MyNet")
    assert str(err.value) == (
        "The forward of MyNet must return a [batch, classes] tensor, a mapping or ModelOutput "
        "with 'logits', or a tuple whose first item is the logits. Got dict with keys ['loss'] "
        "instead (a loss without logits: call the model without labels); return the logits "
        "from forward, or put them under the key 'logits'.")
    with pytest.raises(InvalidTypeError, match=r"Got tuple of \(str\) instead"):
        logits_of(("no",))


def test_the_wrapper_is_transparent():
    # Arrange
    inner = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    inner.card = "a card"
    # Act
    w = logits_model(inner)
    # Assert
    assert [n for n, _ in w.named_modules()] == [n for n, _ in inner.named_modules()]
    assert [n for n, _ in w.named_parameters()] == [n for n, _ in inner.named_parameters()]
    assert list(w.state_dict()) == list(inner.state_dict())
    assert w.card == "a card" and logits_model(w) is w and unwrap(w) is inner
    w.eval()
    assert not inner.training and not inner[1].training and not w.training
    twin = copy.deepcopy(w)
    assert isinstance(twin, LogitsModel) and unwrap(twin) is not inner
    w.to(torch.float64)
    assert inner[0].weight.dtype == torch.float64


def test_the_model_guard_sees_through_the_wrapper():
    # Arrange
    inner = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)).eval()
    w = logits_model(inner)
    # Act
    with ModelGuard(w):
        w.train()(torch.randn(4, 2))
    # Assert: the running statistics and the eval flag are restored on the inner model
    assert not inner.training and float(inner[1].running_mean.abs().sum()) == 0.0
