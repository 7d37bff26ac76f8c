"""Conformance of every registered trust metric (a new metric file is tested without new tests).

Each metric runs on a tiny model and attribution, returns its typed frozen result, repeats for a
seed, leaves the model unchanged, says when it does not apply, records an exception as a note,
and grades only through its own criteria.
"""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import torch
from captum.attr import IntegratedGradients
from torch import nn

from explain import Attribution
from explain._core.guard import model_fingerprint
from explain.card import Modality
from explain.quality import METRICS, THRESHOLDS, Verdict, evaluate, get_metric, list_metrics
from explain.quality import base as quality_base
from explain.quality._common import attribution_values
from explain.quality.base import (
    Criterion,
    MetricContext,
    MetricOption,
    MetricResult,
    MetricStatus,
    TrustMetric,
    metric_options,
)


def _ig(model, x, target):
    return IntegratedGradients(model).attribute(x, target=target, n_steps=16)


def _token_map(model, ids, target):
    return (ids == 5).double()


@pytest.fixture()
def tabular_context():
    """A 2-layer MLP, 5 samples, an integrated-gradients map (every built-in metric applies)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).eval()
    x = torch.randn(5, 6)
    target = model(x).argmax(1)
    attr = Attribution(values=_ig(model, x, target).detach(), method="integrated_gradients",
                       target=target, inputs=x, baselines=torch.zeros_like(x))
    twin = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).eval()  # data_sanity's
    return MetricContext(model=model, inputs=x, values=attribution_values(attr, 5),
                         target=target, method=attr.method, modality=Modality.TABULAR,
                         explain_fn=_ig, baselines=attr.baselines, seed=3, data_model=twin)


@pytest.fixture()
def text_context():
    """Token ids with padding and a hand-made map of a method without completeness."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 2, padding_idx=0), nn.Flatten(),
                          nn.Linear(12, 2)).eval()
    ids = torch.tensor([[3, 5, 7, 5, 2, 0], [5, 9, 4, 0, 0, 0]])
    return MetricContext(model=model, inputs=ids, values=(ids == 5).double(),
                         target=torch.tensor([1, 1]), method="handmade",
                         modality=Modality.TEXT, explain_fn=_token_map)


def _run(metric: TrustMetric, context: MetricContext) -> MetricResult:
    torch.manual_seed(context.seed)          # what evaluate does before the metrics run
    return metric.run(context)


# ----------------------------------------------------------------------------- the registry


def test_registry_order_is_the_metrics_tuple_and_the_public_list():
    import explain

    assert list_metrics() == explain.list_metrics()
    assert list(METRICS) == [m for m in list_metrics() if not get_metric(m).opt_in]
    assert list_metrics()[:6] == ["completeness", "faithfulness", "sanity", "infidelity",
                                  "sensitivity", "data_sanity"]
    assert [m for m in list_metrics() if get_metric(m).opt_in] == ["data_sanity"]


def test_option_names_are_unique_and_clash_with_nothing_evaluate_takes():
    names = [o.name for m in list_metrics() for o in get_metric(m).options]
    explicit = set(inspect.signature(evaluate).parameters)

    assert len(names) == len(set(names))
    assert not set(names) & set(THRESHOLDS)
    assert not set(names) & explicit
    assert set(metric_options()) == set(names)


# ----------------------------------------------------------------------------- every metric


@pytest.mark.parametrize("name", list_metrics())
def test_metric_declares_its_name_title_options_and_thresholds(name):
    metric = get_metric(name)

    assert isinstance(metric, TrustMetric)
    assert metric.name == name and metric.title
    for option in metric.options:
        assert isinstance(option, MetricOption) and option.meaning
        assert option.validate(option.default) == option.default
    for threshold in metric.thresholds:
        assert THRESHOLDS[threshold].metric == name
    assert bool(metric.thresholds) == metric.graded


@pytest.mark.parametrize("name", list_metrics())
def test_metric_returns_its_typed_result_with_one_value_per_sample(name, tabular_context):
    metric = get_metric(name)

    result = _run(metric, tabular_context)

    assert isinstance(result, MetricResult)
    assert (result.metric, result.status, result.note) == (name, MetricStatus.COMPUTED, "")
    assert result.per_sample
    for series in result.per_sample.values():
        assert isinstance(series, tuple) and len(series) == 5
        assert all(v is None or isinstance(v, float) for v in series)
    assert result.seconds is not None and result.seconds >= 0
    assert metric.describe(result)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.note = "changed"  # type: ignore[misc]


@pytest.mark.parametrize("name", list_metrics())
def test_metric_is_deterministic_for_a_seed(name, tabular_context):
    metric = get_metric(name)

    first, second = _run(metric, tabular_context), _run(metric, tabular_context)

    assert first.per_sample == second.per_sample
    assert first.curves == second.curves
    assert first.sanity_curve == second.sanity_curve


@pytest.mark.parametrize("name", list_metrics())
def test_metric_leaves_the_model_unchanged(name, tabular_context):
    model = tabular_context.model
    before = model_fingerprint(model)
    rng = torch.get_rng_state()

    get_metric(name).run(tabular_context)

    after = model_fingerprint(model)
    assert {k: v for k, v in before.items() if k != "state"} == \
        {k: v for k, v in after.items() if k != "state"}
    assert all(torch.equal(before["state"][k], after["state"][k]) for k in before["state"])
    assert torch.equal(torch.get_rng_state(), rng)


@pytest.mark.parametrize("name", list_metrics())
def test_metric_that_does_not_apply_says_so(name, text_context):
    metric = get_metric(name)
    why = metric.not_applicable(text_context)

    result = _run(metric, text_context)

    if why:
        assert result.status is MetricStatus.NOT_APPLICABLE
        assert result.note == f"{name}: {why}"
        assert (dict(result.per_sample), result.seconds) == ({}, None)
    else:
        assert result.status is MetricStatus.COMPUTED, result.note
        assert all(len(s) == 2 for s in result.per_sample.values())


@pytest.mark.parametrize("name", list_metrics())
def test_metric_that_raises_becomes_a_failed_result_with_a_note(name, tabular_context):
    metric = get_metric(name)

    def boom(context):
        raise RuntimeError("boom")

    metric.compute = boom  # type: ignore[method-assign]

    result = metric.run(tabular_context)

    assert result.status is MetricStatus.FAILED
    assert result.note == f"{name}: could not run (RuntimeError: boom)"
    assert dict(result.per_sample) == {}


@pytest.mark.parametrize("name", list_metrics())
def test_metric_grades_only_through_typed_criteria(name, tabular_context):
    metric = get_metric(name)
    result = _run(metric, tabular_context)

    criteria = metric.criteria(result, tabular_context)

    assert isinstance(criteria, tuple)
    assert bool(criteria) == metric.graded
    for c in criteria:
        assert isinstance(c, Criterion)
        assert c.passed in (True, False, None) and c.reason
        assert isinstance(c.fails, Verdict) and c.fails is not Verdict.TRUSTWORTHY


# ----------------------------------------------------------------------------- built-ins


def test_built_in_applicability_on_token_ids(text_context):
    notes = {name: get_metric(name).not_applicable(text_context) for name in METRICS[:5]}

    assert notes == {
        "completeness": "not applicable to 'handmade' (only path and Shapley methods sum to "
                        "f(x) - f(baseline))",
        "faithfulness": "",
        "sanity": "",
        "infidelity": "not defined for token ids (they cannot be nudged by noise)",
        "sensitivity": "not defined for token ids (they cannot be nudged by noise)",
    }


def test_a_new_registered_metric_is_run_and_graded_by_evaluate(monkeypatch, tabular_context):
    registry = quality_base.Registry("quality metric")
    for name in list_metrics():
        registry.add(name, quality_base.METRIC_REGISTRY.get(name))

    class MeanAbs(TrustMetric):
        name, title = "mean-abs", "Mean |attribution|"

        def compute(self, context):
            v = context.values.abs().reshape(context.n_samples, -1).mean(1)
            return MetricResult(self.name, per_sample={"mean_abs": tuple(v.tolist())})

        def criteria(self, result, context):
            return (Criterion("mean_abs", False, "mean |attribution| is always suspicious"),)

        def describe(self, result):
            return f"mean |attribution| {result.median('mean_abs'):.2f}"

    registry.add("mean-abs", MeanAbs)
    monkeypatch.setattr(quality_base, "METRIC_REGISTRY", registry)
    attr = Attribution(values=torch.full((2, 3), 0.5), method="m", target=torch.zeros(2).long(),
                       inputs=torch.ones(2, 3))

    q = evaluate(nn.Linear(3, 2), None, attr, metrics=("mean-abs",))

    assert q.metrics == ("mean-abs",)
    assert q.passed == {"mean_abs": False}
    assert q.verdict is Verdict.DOUBTFUL
    assert q.reasons == ("mean |attribution| is always suspicious",)
    assert q.summary == "m on 2 samples: doubtful (mean |attribution| 0.50)."
