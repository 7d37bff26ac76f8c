"""The trust thresholds table and evaluate's keyword options (validated in one place)."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn

from explain import Attribution
from explain.errors import InvalidInputError, InvalidTypeError, UnknownNameError
from explain.quality import DEFAULT_THRESHOLDS, THRESHOLDS, Verdict, evaluate, get_metric
from explain.quality.thresholds import validate_thresholds


@pytest.fixture()
def edge_detector():
    """A trained-looking MLP explained by a map equal to its input (it must fail sanity)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
    x = torch.randn(6, 6)
    attr = Attribution(values=x.clone(), method="edge", target=model(x).argmax(1), inputs=x)
    return model, x, attr, (lambda m, xs, t: xs.detach().clone())


def test_defaults_are_the_documented_values():
    assert DEFAULT_THRESHOLDS == {"max_completeness_error": 0.05, "min_faithfulness_margin": 0.0,
                                  "max_sanity_correlation": 0.5, "max_sensitivity": 1.0,
                                  "max_data_sanity_correlation": 0.5}


@pytest.mark.parametrize("name", list(THRESHOLDS))
def test_every_threshold_has_meaning_anchor_and_a_valid_default(name):
    t = THRESHOLDS[name]

    assert t.meaning.endswith(".") and t.anchor.endswith(".")
    assert t.validate(t.default) == t.default
    assert name in get_metric(t.metric).thresholds


def test_unknown_threshold_name_lists_the_closest():
    with pytest.raises(UnknownNameError, match="Unknown trust threshold 'max_sensitivty'. Did "
                                               "you mean 'max_sensitivity'"):
        validate_thresholds({"max_sensitivty": 1.0})


def test_threshold_keyword_changes_the_verdict(edge_detector):
    model, x, attr, fn = edge_detector

    strict = evaluate(model, x, attr, metrics=("sanity",), explain_fn=fn)
    lenient = evaluate(model, x, attr, metrics=("sanity",), explain_fn=fn,
                       max_sanity_correlation=1.0)

    assert strict.verdict is Verdict.FAILS_SANITY
    assert lenient.verdict is Verdict.TRUSTWORTHY
    assert lenient.thresholds == {**DEFAULT_THRESHOLDS, "max_sanity_correlation": 1.0}


def test_size_keywords_reach_their_metric(edge_detector):
    model, x, attr, fn = edge_detector

    q = evaluate(model, x, attr, metrics=("faithfulness", "sanity"), explain_fn=fn, steps=4,
                 sanity_checkpoints=1)

    assert q.curves["fraction"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert q.sanity_curve["layer"] == ["0"]


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"stepz": 3}, UnknownNameError, "Unknown evaluate option 'stepz'. Did you mean 'steps'?"),
    ({"steps": 1}, InvalidInputError,
     "The 'steps' parameter of evaluate must be an int >= 2. Got 1 instead."),
    ({"sensitivity_radius": 0.0}, InvalidInputError,
     "The 'sensitivity_radius' parameter of evaluate must be a finite number > 0. Got 0.0 "
     "instead."),
    ({"sanity_abs": "yes"}, InvalidTypeError,
     "The 'sanity_abs' parameter of evaluate must be a bool. Got 'yes' (str) instead."),
    ({"max_sanity_correlation": 2}, InvalidInputError,
     "The 'max_sanity_correlation' parameter of evaluate must be a finite number >= -1 and "
     "<= 1. Got 2.0 instead."),
    ({"max_completeness_error": float("nan")}, InvalidInputError,
     "The 'max_completeness_error' parameter of evaluate must be a finite number >= 0. Got nan "
     "instead."),
    ({"infidelity_perturbations": 2.5}, InvalidTypeError,
     "The 'infidelity_perturbations' parameter of evaluate must be an int >= 1. Got 2.5 "
     "(float) instead."),
])
def test_bad_options_get_one_form_of_message(edge_detector, kwargs, error, message):
    model, x, attr, fn = edge_detector

    with pytest.raises(error) as info:
        evaluate(model, x, attr, explain_fn=fn, **kwargs)

    assert str(info.value) == message


def test_signature_keeps_the_keywords_callers_introspect():
    params = inspect.signature(evaluate).parameters

    assert {"metrics", "n_samples", "modality", "explain_fn", "attribute_options", "seed",
            "batch_size"} <= set(params)
    assert all(params[p].kind is inspect.Parameter.KEYWORD_ONLY
               for p in ("metrics", "n_samples", "modality"))


def test_one_sanity_checkpoint_still_randomizes_every_layer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(),
                          nn.Linear(8, 2)).eval()
    x = torch.randn(6, 6)

    def saliency(m, xs, t):
        xs = xs.detach().requires_grad_(True)
        return torch.autograd.grad(m(xs).gather(1, t[:, None]).sum(), xs)[0]

    attr = Attribution(values=saliency(model, x, model(x).argmax(1)), method="saliency",
                       target=model(x).argmax(1), inputs=x)

    one = evaluate(model, x, attr, metrics=("sanity",), explain_fn=saliency,
                   sanity_checkpoints=1)
    every = evaluate(model, x, attr, metrics=("sanity",), explain_fn=saliency,
                     sanity_checkpoints=3)

    assert one.sanity_curve["layer"] == ["0"] and every.sanity_curve["layer"] == ["4", "2", "0"]
    assert one.per_sample["sanity"] == every.per_sample["sanity"]


def test_evaluate_docstring_lists_every_option_and_threshold_with_its_default():
    from explain.quality.base import metric_options

    doc = " ".join(evaluate.__doc__.split())
    listed = {**{n: o.default for n, o in metric_options().items()}, **DEFAULT_THRESHOLDS}

    assert [n for n, d in listed.items() if f"``{n}`` ({d})" not in doc] == []
