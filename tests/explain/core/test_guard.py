"""The model is never changed: mode, parameters, buffers, hooks, requires_grad, attributes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from explain._core.guard import ModelGuard, model_fingerprint
from explain.attribution import attribute, list_methods
from tests.fixtures.models import TinyCNN, cases

_FAST = {"n_steps": 4, "n_samples": 2, "nt_samples": 2, "nsamples": 4}
_OPTIONS = {"integrated_gradients": ["n_steps"], "gradient_shap": ["n_samples"],
            "smoothgrad": ["nt_samples"], "shap_gradient": ["nsamples"],
            "shap_kernel": ["nsamples"], "deeplift": ["n_steps"], "shap_deep": ["nsamples"]}


def check_unchanged(before: dict, after: dict) -> None:
    for key in ("training", "requires_grad", "hooks", "attrs", "global_hooks"):
        assert before[key] == after[key], key
    for name, value in before["state"].items():
        assert torch.equal(value, after["state"][name]), name
    for g0, g1 in zip(before["grads"], after["grads"]):
        assert (g0 is None and g1 is None) or torch.equal(g0, g1)


def _unusual(model: nn.Module) -> nn.Module:
    """Frozen first layer, a stale .grad, a user hook: all must survive."""
    params = list(model.parameters())
    params[0].requires_grad_(False)
    params[-1].grad = torch.ones_like(params[-1])
    model.register_forward_hook(lambda m, i, o: None)
    return model


@pytest.mark.parametrize("method", sorted(list_methods()))
def test_every_method_leaves_the_model_unchanged(method):
    model = _unusual(TinyCNN().eval())
    x = torch.randn(2, 1, 8, 8)
    before = model_fingerprint(model)
    options = {k: _FAST[k] for k in _OPTIONS.get(method, [])}
    if method == "shap_deep":
        options = {}
    attribute(model, x, target=0, method=method, **options)
    check_unchanged(before, model_fingerprint(model))


@pytest.mark.parametrize("name", ["text", "gru"])
def test_text_and_recurrent_models_are_left_unchanged(name):
    model, x = cases()[name]
    model = _unusual(model)
    before = model_fingerprint(model)
    attribute(model, x, method="deeplift", n_steps=4)
    attribute(model, x, method="occlusion")
    check_unchanged(before, model_fingerprint(model))


def test_a_train_mode_model_keeps_its_mode_and_batchnorm_statistics():
    model = TinyCNN().train()
    before = model_fingerprint(model)
    attribute(model, torch.randn(4, 1, 8, 8), method="integrated_gradients", n_steps=4)
    check_unchanged(before, model_fingerprint(model))


def test_the_model_is_restored_when_a_method_raises(monkeypatch):
    from captum import attr

    model = _unusual(TinyCNN().eval())
    before = model_fingerprint(model)

    def broken(self, inputs, *args, **kwargs):
        # misbehave like a half-finished library call, then fail
        self.forward_func.model.train()
        self.forward_func.model.c1.register_forward_hook(lambda m, i, o: None)
        self.forward_func.model.c1.stash = 1
        with torch.no_grad():
            self.forward_func.model.bn.running_mean.add_(5)
        for p in self.forward_func.model.parameters():
            p.requires_grad_(True)
        raise RuntimeError("boom")

    monkeypatch.setattr(attr.Saliency, "attribute", broken)
    with pytest.raises(RuntimeError, match="boom"):
        attribute(model, torch.randn(2, 1, 8, 8), method="saliency")
    check_unchanged(before, model_fingerprint(model))


def test_guard_restores_buffers_written_in_its_body():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)).eval()
    before = model_fingerprint(model)
    with ModelGuard(model):
        model.train()(torch.randn(8, 2))
    check_unchanged(before, model_fingerprint(model))
