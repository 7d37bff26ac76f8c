"""Every registered method on every zoo model (and on the tricky small models): finite values
of the right shape, or a documented refusal. A new method or model is picked up unasked."""

from __future__ import annotations

import functools
import re

import pytest
import torch

import zoo
from explain import InvalidInputError
from explain.attribution import attribute, list_methods
from tests.fixtures.models import cases

# The cheapest settings that still exercise each method's code path.
FAST = {"integrated_gradients": {"n_steps": 2}, "deeplift": {"n_steps": 2},
        "gradient_shap": {"n_samples": 2}, "smoothgrad": {"nt_samples": 2},
        "shap_gradient": {"nsamples": 2}, "shap_deep": {"nsamples": 2},
        "shap_kernel": {"nsamples": 16}}

# Combinations a method does not support by design, with the reason it gives.
REFUSED = {"grad_cam": "Grad-CAM needs image inputs|no nn.Conv2d layer found",
           "shap_kernel": "Kernel SHAP fits one weight per feature"}


def zoo_sample(model: torch.nn.Module) -> torch.Tensor:
    """One seeded sample that fits the model's card (token ids with padding; padded frames)."""
    card = model.card
    g = torch.Generator().manual_seed(0)
    if card.input_dtype == "int64":
        ids = torch.randint(2, 50, (1, card.input_shape[0]), generator=g)
        ids[:, 12:] = 0
        return ids
    x = torch.randn(1, *[d or 9 for d in card.input_shape], generator=g)
    if card.modality.value == "sequence":
        x[:, 6:] = 0
    return x


@functools.cache
def zoo_model(name: str) -> torch.nn.Module:
    """Each zoo model built once per session (attribution never changes it)."""
    return zoo.create_model(name).eval()


@functools.cache
def small(case: str) -> tuple[torch.nn.Module, torch.Tensor]:
    return cases()[case]


def check_attribution(model: torch.nn.Module, x: torch.Tensor, method: str) -> None:
    try:
        a = attribute(model, x, method=method, **FAST.get(method, {}))
    except InvalidInputError as err:
        if method in REFUSED and re.search(REFUSED[method], str(err)):
            pytest.skip(f"{method} does not support this input: {str(err).split(':')[1][:80]}")
        raise
    expected = x.shape
    assert a.values.shape == expected and a.values.dtype == torch.float32
    assert bool(torch.isfinite(a.values).all())
    assert a.method in list_methods() and a.requested_method == method
    assert a.target.shape == (x.shape[0],)
    if x.dtype == torch.int64:
        assert torch.all(a.values[x == 0] == 0)
    if a.method != method:  # a fallback always says so
        assert a.warnings and a.warnings[0].startswith(f"{method} -> {a.method}")


def _zoo_params():
    for name in zoo.list_models():
        for method in list_methods():
            yield pytest.param(name, method, id=f"{name}-{method}")


@pytest.mark.parametrize("name, method", list(_zoo_params()))
def test_every_method_on_every_zoo_model(name, method):
    model = zoo_model(name)
    check_attribution(model, zoo_sample(model), method)


@pytest.mark.parametrize("case", ["cnn", "reused", "functional", "gru", "text", "bag"])
@pytest.mark.parametrize("method", list_methods())
def test_every_method_on_tricky_small_models(case, method):
    model, x = small(case)
    check_attribution(model, x[:2], method)
