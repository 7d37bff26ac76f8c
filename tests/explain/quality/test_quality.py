"""Trust in explanations: explain.quality.evaluate, Quality/Verdict, agreement."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients, Saliency
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from explain import Attribution
from explain.card import Modality
from explain.errors import (
    DataMismatchError,
    InvalidInputError,
    InvalidTypeError,
    UnknownNameError,
)
from explain.quality import Quality, Verdict, agreement, evaluate
from explain.quality._common import feature_units, spearman

# ----------------------------------------------------------------------------- helpers


def ig_fn(model, x, target):
    return IntegratedGradients(model).attribute(x, target=target, n_steps=32)


def saliency_fn(model, x, target):
    return Saliency(model).attribute(x, target=target, abs=False)


def input_fn(model, x, target):
    """A fake 'edge detector': the map is the input itself, whatever the model."""
    return x.detach().clone()


def make_attr(fn, model, x, method, target=None):
    target = model(x).argmax(1) if target is None else target
    return Attribution(values=fn(model, x, target).detach(), method=method, target=target,
                       inputs=x, baselines=torch.zeros_like(x))


@pytest.fixture(scope="module")
def linear3():
    """A linear model where only features 0, 1, 2 matter (for class 1, against class 0)."""
    torch.manual_seed(0)
    model = nn.Linear(10, 2)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
        model.weight[1, :3] = torch.tensor([2.0, 1.5, 1.0])
        model.weight[0, :3] = -model.weight[1, :3]
    x = torch.randn(6, 10).abs() + 0.5   # positive inputs: class 1 is predicted
    return model.eval(), x


@pytest.fixture(scope="module")
def trained_mlp():
    """A tiny MLP trained on a rule that uses 3 of 8 features (train acc ~1)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=g)
    y = (x[:, 0] - x[:, 1] + 0.5 * x[:, 2] > 0).long()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                          nn.Linear(32, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    acc = (model(x).argmax(1) == y).float().mean().item()
    assert acc > 0.95
    return model.eval(), x[:8]


# ----------------------------------------------------------------------------- completeness


def test_completeness_of_exact_ig_on_linear_model_is_near_zero(linear3):
    model, x = linear3
    attr = make_attr(ig_fn, model, x, "integrated_gradients")

    q = evaluate(model, x, attr, metrics=("completeness",))

    assert q.metrics == ("completeness",)
    assert q.medians["completeness"] < 1e-5
    assert max(q.per_sample["completeness"]) < 1e-5
    assert q.passed == {"completeness": True}
    assert q.verdict is Verdict.TRUSTWORTHY
    assert "completeness error 0.0% of |f(x)-f(b)|" in q.summary


def test_coarse_ig_on_nonlinear_model_fails_completeness_and_is_doubtful(trained_mlp):
    model, x = trained_mlp

    def coarse(m, xs, t):
        return IntegratedGradients(m).attribute(xs, target=t, n_steps=2, method="riemann_right")
    attr = make_attr(coarse, model, x, "integrated_gradients")

    q = evaluate(model, x, attr, metrics=("completeness",))

    assert q.medians["completeness"] > 0.05
    assert q.passed["completeness"] is False
    assert q.verdict is Verdict.DOUBTFUL
    assert q.reasons[0].startswith("completeness error")


def test_completeness_skipped_with_note_for_methods_without_it(linear3):
    model, x = linear3
    attr = make_attr(saliency_fn, model, x, "saliency")

    q = evaluate(model, x, attr, metrics=("completeness", "faithfulness"))

    assert "completeness" not in q.per_sample
    assert q.notes == ("completeness: not applicable to 'saliency' (only path and Shapley "
                       "methods sum to f(x) - f(baseline))",)


# ----------------------------------------------------------------------------- faithfulness


def test_deletion_auc_of_correct_attribution_is_below_random(linear3):
    model, x = linear3
    attr = make_attr(ig_fn, model, x, "integrated_gradients")

    q = evaluate(model, x, attr, metrics=("faithfulness",), steps=10, n_random=4)

    d, rd = q.medians["deletion_auc"], q.medians["random_deletion_auc"]
    i, ri = q.medians["insertion_auc"], q.medians["random_insertion_auc"]
    assert d < rd - 0.1
    assert i > ri + 0.05
    assert all(0.0 <= v <= 1.0 for v in q.per_sample["deletion_auc"])
    assert len(q.curves["fraction"]) == 11 and q.curves["fraction"][-1] == 1.0
    # all features replaced by the zero baseline: logits 0, 0 -> probability 0.5 at the end
    assert q.curves["deletion"][-1] == pytest.approx(0.5)
    assert q.curves["insertion"][0] == pytest.approx(0.5)
    assert q.verdict is Verdict.TRUSTWORTHY


def test_reversed_attribution_is_worse_than_random_and_doubtful(linear3):
    model, x = linear3
    good = make_attr(ig_fn, model, x, "integrated_gradients")
    bad = Attribution(values=-good.values, method="reversed", target=good.target, inputs=x)

    q = evaluate(model, x, bad, metrics=("faithfulness",))

    assert q.medians["deletion_auc"] > q.medians["random_deletion_auc"]
    assert q.passed == {"deletion": False, "insertion": False}
    assert q.verdict is Verdict.DOUBTFUL
    assert any(r.startswith("deletion AUC") for r in q.reasons)


def test_curves_use_few_batched_forwards(linear3):
    model, x = linear3
    attr = make_attr(ig_fn, model, x[:4], "integrated_gradients")
    sizes = []
    handle = model.register_forward_hook(lambda m, i, o: sizes.append(i[0].shape[0]))
    try:
        evaluate(model, None, attr, metrics=("faithfulness",), steps=20, n_random=3)
    finally:
        handle.remove()
    # per sample: 2 curves x (1 + 3 orders) x 21 points = 168 rows in one forward
    assert sizes == [168] * 4


def test_text_deletion_replaces_tokens_with_pad_and_never_touches_padding():
    torch.manual_seed(0)

    class BagOfTokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(20, 1, padding_idx=0)
            with torch.no_grad():
                self.embed.weight.zero_()
                self.embed.weight[5] = 4.0           # token 5 is the evidence for class 1
            self.seen = []

        def forward(self, ids):
            self.seen.append(ids.clone())
            s = self.embed(ids).sum((1, 2))
            return torch.stack([-s, s], 1)

    model = BagOfTokens().eval()
    ids = torch.tensor([[3, 5, 7, 5, 2, 0, 0, 0], [5, 9, 4, 0, 0, 0, 0, 0]])
    values = (ids == 5).float()
    attr = Attribution(values=values, method="handmade", target=torch.tensor([1, 1]), inputs=ids)

    q = evaluate(model, ids, attr, metrics=("faithfulness", "infidelity", "sensitivity"))

    assert q.medians["deletion_auc"] < q.medians["random_deletion_auc"]
    per_sample = [s for s in model.seen if s.shape[0] > 2]       # one batch per sample
    assert len(per_sample) == 2
    for original, batch in zip(ids, per_sample):
        assert bool((batch[:, original == 0] == 0).all())        # padding never touched
        assert set(batch.unique().tolist()) <= set(original.tolist()) | {0}
    assert [n.split(":")[0] for n in q.notes] == ["infidelity", "sensitivity"]


def test_sequence_perturbations_keep_padding_frames_zero():
    class MeanOverTime(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)
            self.seen = []

        def forward(self, x):                        # [batch, time, features]
            self.seen.append(x.detach().clone())
            return self.fc(x).mean(1)

    torch.manual_seed(0)
    model = MeanOverTime().eval()
    x = torch.randn(3, 6, 3)
    x[0, 4:] = 0
    x[1, 2:] = 0
    attr = make_attr(saliency_fn, model, x, "saliency")

    padded_from = [4, 2, 6]
    model.seen = []

    evaluate(model, x, attr, metrics=("faithfulness",))
    curves, model.seen = [s for s in model.seen if s.shape[0] > 3], []
    evaluate(model, x, attr, metrics=("infidelity", "sensitivity"), explain_fn=saliency_fn)

    assert len(curves) == 3                                       # one batch per sample
    for i, batch in enumerate(curves):
        assert bool((batch[:, padded_from[i]:] == 0).all())
        assert not bool((batch[:, :padded_from[i]] == x[i, :padded_from[i]]).all())
    assert len(model.seen) >= 2
    for batch in model.seen:                                      # captum repeat_interleaves
        reps = batch.shape[0] // 3
        for row in range(batch.shape[0]):
            assert bool((batch[row, padded_from[row // reps]:] == 0).all())


def test_image_units_are_patches_over_all_channels():
    x = torch.zeros(2, 3, 8, 8)

    unit, n_ids = feature_units(x, Modality.IMAGE, patch_size=4)

    assert n_ids == 4
    assert unit.shape == x.shape
    assert unit[0, 0, 0, 0] == unit[0, 2, 3, 3] == 0
    assert unit[1, 1, 7, 7] == 3 and unit[1, 0, 0, 7] == 1


def test_image_model_faithfulness_runs_on_patches():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(4, 3)).eval()
    x = torch.randn(2, 1, 12, 12)
    attr = make_attr(ig_fn, model, x, "integrated_gradients")

    q = evaluate(model, x, attr, metrics=("completeness", "faithfulness"), patch_size=3)

    assert q.medians["completeness"] < 0.05
    assert q.medians["deletion_auc"] < q.medians["random_deletion_auc"]


# ----------------------------------------------------------------------------- sanity


def test_gradient_maps_of_trained_mlp_decorrelate_after_randomization(trained_mlp):
    model, x = trained_mlp
    for fn, method in ((ig_fn, "integrated_gradients"), (saliency_fn, "saliency")):
        attr = make_attr(fn, model, x, method)

        q = evaluate(model, x, attr, metrics=("sanity",), explain_fn=fn)

        assert q.medians["sanity"] < 0.5, method
        assert q.passed["sanity"] is True
        assert q.verdict is Verdict.TRUSTWORTHY
        assert q.sanity_curve["layers"] == ["4", "2", "0"]      # output layer first
        assert q.sanity_curve["layer"][-1] == "0"


def test_input_only_edge_detector_fails_sanity(trained_mlp):
    model, x = trained_mlp
    attr = make_attr(input_fn, model, x, "edge_detector")

    q = evaluate(model, x, attr, metrics=("sanity", "faithfulness"), explain_fn=input_fn)

    assert q.medians["sanity"] == pytest.approx(1.0)
    assert q.sanity_curve["correlation"] == pytest.approx([1.0, 1.0, 1.0])
    assert q.verdict is Verdict.FAILS_SANITY
    assert q.reasons[0].startswith("rank correlation 1.00 with the map of a fully randomized")
    assert q.summary.startswith("edge_detector on 8 samples: fails sanity (")


def test_a_metric_that_raises_becomes_a_note_and_a_doubtful_verdict(linear3):
    model, x = linear3
    attr = make_attr(ig_fn, model, x, "integrated_gradients")

    def broken(m, xs, t):
        raise RuntimeError("boom")

    q = evaluate(model, x, attr, metrics=("completeness", "sanity"), explain_fn=broken)

    assert q.metrics == ("completeness",)
    assert q.notes == ("sanity: could not run (RuntimeError: boom)",)
    assert q.verdict is Verdict.DOUBTFUL
    assert q.reasons == ("sanity could not be computed",)


# ----------------------------------------------------------------------------- model untouched


def test_users_model_is_never_changed():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5),
                          nn.Linear(16, 3))
    model.train()
    model[0].weight.requires_grad_(False)
    x = torch.randn(5, 6)
    model(x).sum().backward()
    before = copy.deepcopy(model.state_dict())
    grads = {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}
    rng = torch.get_rng_state()
    with torch.no_grad():
        target = model.eval()(x).argmax(1)
    model.train()
    attr = make_attr(ig_fn, model.eval(), x, "integrated_gradients", target=target)
    model.train()

    q = evaluate(model, x, attr, explain_fn=ig_fn, n_samples=5)

    assert set(q.metrics) == {"completeness", "faithfulness", "sanity", "infidelity",
                              "sensitivity"}
    assert all(m.training for m in model.modules())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    for n, p in model.named_parameters():
        assert (p.grad is None) == (grads[n] is None)
        if p.grad is not None:
            assert torch.equal(p.grad, grads[n])
    assert model[0].weight.requires_grad is False
    assert torch.equal(torch.get_rng_state(), rng)


# ----------------------------------------------------------------------------- result type


def test_quality_round_trips_through_strict_json(trained_mlp):
    model, x = trained_mlp
    attr = make_attr(ig_fn, model, x, "integrated_gradients")
    q = evaluate(model, x, attr, explain_fn=ig_fn, n_samples=4)
    q_nan = Quality(method="m", verdict="doubtful", summary="s", n_samples=1,
                    medians={"sanity": float("nan")})

    text = json.dumps(q.to_dict(), allow_nan=False)
    back = Quality.from_dict(json.loads(text))

    assert back == q
    assert back.verdict is q.verdict
    assert len(back.per_sample["deletion_auc"]) == 4
    assert q_nan.to_dict()["medians"] == {"sanity": None}
    assert Verdict.FAILS_SANITY.label == "fails sanity"


# ----------------------------------------------------------------------------- agreement


def test_agreement_matrix_of_related_maps():
    torch.manual_seed(0)
    x, t = torch.randn(5, 12), torch.zeros(5, dtype=torch.long)
    base = torch.randn(5, 12)
    mk = lambda v, m: Attribution(values=v, method=m, target=t, inputs=x)  # noqa: E731
    attrs = [mk(base, "a"), mk(3 * base + 1, "b"), mk(-base, "c"), mk(torch.randn(5, 12), "d")]

    m = agreement(attrs)

    assert m.shape == (4, 4)
    np.testing.assert_allclose(np.diag(m), 1.0)
    np.testing.assert_allclose(m, m.T)
    assert m[0, 1] == pytest.approx(1.0) and m[0, 2] == pytest.approx(-1.0)
    assert abs(m[0, 3]) < 0.6


def test_agreement_leaves_token_padding_out():
    ids = torch.zeros(4, 40, dtype=torch.long)
    ids[:, :6] = torch.arange(1, 7)
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(4, 40, generator=g), torch.randn(4, 40, generator=g)
    a[ids == 0] = 0
    b[ids == 0] = 0
    mk = lambda v: Attribution(values=v, method="x", target=torch.zeros(4), inputs=ids)  # noqa

    m = agreement([mk(a), mk(b)])

    real = np.median([spearman(a[i, :6].numpy(), b[i, :6].numpy()) for i in range(4)])
    assert m[0, 1] == pytest.approx(real)


def test_agreement_refuses_different_inputs_and_empty_lists():
    t = torch.zeros(2, dtype=torch.long)
    a = Attribution(values=torch.ones(2, 3), method="a", target=t, inputs=torch.zeros(2, 3))
    b = Attribution(values=torch.ones(2, 3), method="b", target=t, inputs=torch.ones(2, 3))

    with pytest.raises(DataMismatchError, match="same inputs"):
        agreement([a, b])
    with pytest.raises(InvalidInputError, match="at least one Attribution"):
        agreement([])


# ----------------------------------------------------------------------------- validation


def test_invalid_arguments_have_clear_messages(linear3):
    model, x = linear3
    attr = make_attr(ig_fn, model, x, "integrated_gradients")

    with pytest.raises(UnknownNameError, match="Unknown quality metric 'sanity_check'. Did you "
                                               "mean 'sanity'"):
        evaluate(model, x, attr, metrics=("sanity_check",))
    with pytest.raises(InvalidInputError, match=r"The 'n_samples' parameter of evaluate must be "
                                                r"an int >= 1. Got 0 instead."):
        evaluate(model, x, attr, n_samples=0)
    with pytest.raises(InvalidTypeError, match="must be an explain.Attribution"):
        evaluate(model, x, attr.values)
    with pytest.raises(DataMismatchError, match="shape"):
        evaluate(model, x[:, :5], attr)
    with pytest.raises(InvalidInputError, match="'patch_size' parameter of evaluate must be an "
                                                "int >= 1. Got 0 instead."):
        evaluate(model, x, attr, patch_size=0)
    with pytest.raises(InvalidTypeError, match="'model' parameter of evaluate must be a torch"):
        evaluate("model", x, attr)


def test_default_explain_fn_reruns_explain_attribute(linear3):
    attribute = pytest.importorskip("explain.attribution").attribute
    model, x = linear3
    attr = attribute(model, x, method="integrated_gradients", n_steps=16)

    q = evaluate(model, x, attr, metrics=("completeness", "sanity"),
                 attribute_options={"n_steps": 16})

    assert q.metrics == ("completeness", "sanity")
    assert q.medians["completeness"] < 1e-4
    assert math.isfinite(q.medians["sanity"])


def test_sanity_randomizes_parameters_the_forward_reaches_without_calling_their_module():
    from explain.quality.sanity import _groups, layer_order

    torch.manual_seed(0)

    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.pos = nn.Parameter(torch.randn(4, 8))
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
            self.head = nn.Linear(8, 2)

        def forward(self, x):                          # [batch, 4, 8]
            h = x + self.pos
            return self.head(self.attn(h, h, h)[0].mean(1))

    model = Attn().eval()
    x = torch.randn(3, 4, 8)

    order = layer_order(model, x)
    groups = _groups(model, order)

    assert order == ["", "attn", "head"]                 # root first: its pos is used first
    assert groups["attn"] == ["attn", "attn.out_proj"]   # out_proj is used via its weight only


def test_token_completeness_uses_the_methods_delta_in_embedding_space():
    ids = torch.tensor([[4, 2, 0], [3, 0, 0]])
    values = torch.tensor([[1.0, 0.5, 0.0], [2.0, 0.0, 0.0]])
    attr = Attribution(values=values, method="integrated_gradients", target=torch.tensor([0, 1]),
                       inputs=ids, convergence_delta=torch.tensor([0.03, -0.5]))
    model = nn.Sequential(nn.Embedding(5, 2), nn.Flatten(), nn.Linear(6, 2)).eval()

    q = evaluate(model, ids, attr, metrics=("completeness",))
    no_delta = evaluate(model, ids, Attribution(values=values, method="integrated_gradients",
                                                target=attr.target, inputs=ids),
                        metrics=("completeness",))

    # gap = sum - delta: 1.47 and 2.5 -> errors 0.03 / 1.47 and 0.5 / 2.5
    assert q.per_sample["completeness"] == pytest.approx([0.03 / 1.47, 0.2])
    assert no_delta.notes[0].startswith("completeness: could not run (AttributionError")


def test_non_finite_values_are_refused_and_constant_maps_are_doubtful(linear3):
    model, x = linear3
    t = model(x).argmax(1)
    nan = Attribution(values=torch.full_like(x, float("nan")), method="m", target=t, inputs=x)
    flat = Attribution(values=torch.ones_like(x), method="flat", target=t, inputs=x)

    with pytest.raises(InvalidInputError, match="contain 60 NaN/inf values"):
        evaluate(model, x, nan)
    q = evaluate(model, x, flat, metrics=("sanity",), explain_fn=lambda m, xs, tt: xs * 0 + 1)

    assert q.medians["sanity"] is None
    assert q.verdict is Verdict.DOUBTFUL
    assert q.reasons == ("the sanity correlation is undefined (constant maps explain nothing)",)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-5, 5), min_size=3, max_size=30))
def test_spearman_is_one_under_monotone_maps_and_minus_one_reversed(raw):
    a = np.asarray(raw, dtype=float)
    if np.ptp(a) == 0:
        assert math.isnan(spearman(a, a))
        return
    assert spearman(a, np.exp(a)) == pytest.approx(1.0)
    assert spearman(a, -3 * a) == pytest.approx(-1.0)


def test_sensitivity_gives_the_explanation_function_gradients(trained_mlp):
    model, x = trained_mlp
    attr = make_attr(saliency_fn, model, x, "saliency")

    def needs_grad(m, xs, t):        # like shap: plain autograd, no enable_grad of its own
        xs = xs.detach().requires_grad_(True)
        out = m(xs).gather(1, t[:, None]).sum()
        return torch.autograd.grad(out, xs)[0]

    q = evaluate(model, x, attr, metrics=("sensitivity",), explain_fn=needs_grad)

    assert q.metrics == ("sensitivity",)
    assert 0 <= q.medians["sensitivity"] < 1.0


def test_stochastic_explainers_are_repeatable_and_leave_the_global_rng(trained_mlp):
    model, x = trained_mlp
    attr = make_attr(saliency_fn, model, x, "smoothgrad")

    def noisy(m, xs, t):
        return saliency_fn(m, xs + 0.1 * torch.randn_like(xs), t)

    rng = torch.get_rng_state()
    a = evaluate(model, x, attr, metrics=("sanity", "sensitivity"), explain_fn=noisy, seed=3)
    b = evaluate(model, x, attr, metrics=("sanity", "sensitivity"), explain_fn=noisy, seed=3)

    assert a.per_sample == b.per_sample
    assert torch.equal(torch.get_rng_state(), rng)
