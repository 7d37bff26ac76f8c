"""Data-randomization sanity (Adebayo et al. 2018): the map must change for a permuted-label twin."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import explain
from explain.errors import InvalidTypeError
from explain.quality import METRICS, Verdict, evaluate


def _fit(x: torch.Tensor, y: torch.Tensor, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(12, 32), nn.Tanh(), nn.Linear(32, 2))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def separable():
    """An MLP trained on linearly separable data and its twin trained on permuted labels."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 12, generator=g)
    w = torch.zeros(12)
    w[:3] = torch.tensor([3.0, -2.0, 1.5])
    y = (x @ w > 0).long()
    real = _fit(x, y)
    twin = _fit(x, y[torch.randperm(256, generator=g)])
    attr = explain.attribute(real, x[:16], target=real(x[:16]).argmax(1), method="saliency")
    return real, twin, x[:16], attr


def test_permuted_label_twin_decorrelates_the_map_and_passes(separable):
    real, twin, x, attr = separable

    q = evaluate(real, x, attr, metrics=("data_sanity",), data_model=twin, n_samples=16)

    assert q.medians["data_sanity"] < 0.1
    assert (q.verdict, q.passed, q.reasons) == (Verdict.TRUSTWORTHY, {"data_sanity": True}, ())
    assert q.summary == (f"saliency on 16 samples: trustworthy (rank correlation "
                         f"{q.medians['data_sanity']:.2f} with the model trained on permuted "
                         "labels).")


def test_the_model_itself_as_the_twin_correlates_one_and_fails_sanity(separable):
    real, _, x, attr = separable

    q = evaluate(real, x, attr, metrics=("data_sanity",), data_model=real, n_samples=16)

    assert q.medians["data_sanity"] == pytest.approx(1.0)
    assert q.verdict is Verdict.FAILS_SANITY and q.passed == {"data_sanity": False}
    assert q.reasons == ("rank correlation 1.00 with the map of the model trained on permuted "
                         "labels > 0.5",)


def test_threshold_override_moves_the_verdict(separable):
    real, twin, x, attr = separable

    q = evaluate(real, x, attr, metrics=("data_sanity",), data_model=twin, n_samples=16,
                 max_data_sanity_correlation=-0.9)

    assert q.verdict is Verdict.FAILS_SANITY
    assert q.reasons[0].endswith("with the map of the model trained on permuted labels > -0.9")


def test_data_sanity_is_opt_in_added_when_a_twin_is_given(separable):
    real, twin, x, attr = separable

    without = evaluate(real, x, attr, n_samples=4)
    with_twin = evaluate(real, x, attr, data_model=twin, n_samples=4)

    assert "data_sanity" not in METRICS and "data_sanity" not in without.metrics
    assert not any(n.startswith("data_sanity") for n in without.notes)
    assert with_twin.metrics[-1] == "data_sanity"
    assert with_twin.medians["sanity"] == without.medians["sanity"]


def test_named_without_a_twin_says_how_to_give_one(separable):
    real, _, x, attr = separable

    q = evaluate(real, x, attr, metrics=("data_sanity",), n_samples=4)

    assert q.notes == ("data_sanity: needs the model retrained on permuted labels: pass "
                       "data_model=... (zoo runs: Run.audit(data_sanity=True) builds it)",)
    assert q.reasons == ("no graded metric could be computed",)


def test_a_twin_that_is_not_a_module_is_a_typed_error(separable):
    real, _, x, attr = separable

    with pytest.raises(InvalidTypeError, match="'data_model' parameter of evaluate must be a "
                                               r"torch.nn.Module .* Got str instead"):
        evaluate(real, x, attr, data_model="twin")
