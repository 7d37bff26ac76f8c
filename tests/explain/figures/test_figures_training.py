"""Training-health figures: the traces carry the history's numbers; gaps stay gaps."""

from __future__ import annotations

import math

import pytest

from explain.figures import training as tr
from tests.fixtures.audit import XSS, synthetic_history


def test_loss_curves_plot_every_split_and_mark_the_overfitting_epoch():
    h = synthetic_history()
    fig = tr.loss_curves(h, overfit_epoch=3)
    by_name = {t.name: t for t in fig.data}
    assert list(by_name) == ["train loss", "val loss", "train accuracy", "val accuracy"]
    assert list(by_name["val loss"].y) == [1.1, 0.8, 0.7, 0.75, 0.9]
    assert list(by_name["train loss"].x) == [1, 2, 3, 4, 5]
    vlines = [s for s in fig.layout.shapes if s.x0 == 3 and s.x1 == 3]
    assert len(vlines) == 2  # one per subplot
    assert [a.text for a in fig.layout.annotations if "epoch 3" in a.text] == [
        "overfitting starts (epoch 3)"]


def test_loss_curves_without_overfitting_marks_the_lowest_validation_loss():
    fig = tr.loss_curves(synthetic_history())
    assert tr.best_epoch(synthetic_history()) == 3
    assert any(a.text == "lowest val loss (epoch 3)" for a in fig.layout.annotations)


def test_gradient_flow_is_a_log10_heatmap_with_gaps_for_missing_values():
    fig = tr.gradient_flow(synthetic_history())
    (heat,) = fig.data
    assert list(heat.y) == ["fc1", "fc2"] and list(heat.x) == [0, 10, 20, 30]
    assert [round(v, 6) for v in heat.z[0]] == [-3.0, -2.0, -1.0, 0.0]
    assert heat.z[1][1] is None and heat.z[1][2] is None  # None and inf are gaps
    assert heat.z[1][3] == pytest.approx(math.log10(4.0))


def test_activation_health_averages_the_last_quarter_of_training():
    fig = tr.activation_health(synthetic_history())
    dead, saturated = fig.data
    assert dead.name == "dead units" and list(dead.x) == ["fc1", "fc2"]
    assert list(dead.y) == [0.6, 0.0]
    assert list(saturated.y) == [0.0, 0.5]


def test_temporal_decay_draws_one_line_per_recording_on_a_log_axis():
    fig = tr.temporal_decay(synthetic_history())
    assert [t.name for t in fig.data] == ["step 0", "step 30"]
    assert list(fig.data[1].y) == [1e-3, 1e-2, 1e-1] and list(fig.data[1].x) == [1, 2, 3]
    assert fig.layout.yaxis.type == "log"


def test_spectral_exponents_flag_layers_outside_the_2_to_6_band():
    fig = tr.spectral_exponents({"conv1": 3.5, "fc": 1.4, "skip": None, "head": 7.0})
    (bars,) = fig.data
    assert list(bars.x) == ["conv1", "fc", "head"]
    colours = list(bars.marker.color)
    assert colours[0] != colours[1] and colours[1] == colours[2]


def test_data_sufficiency_sorts_the_curve_by_training_size():
    fig = tr.data_sufficiency([(1000, 0.9), (250, 0.7), (500, 0.82)])
    assert list(fig.data[0].x) == [250, 500, 1000]
    assert list(fig.data[0].y) == [0.7, 0.82, 0.9]


@pytest.mark.parametrize("fn", [tr.loss_curves, tr.gradient_flow, tr.activation_health,
                                tr.temporal_decay])
def test_empty_history_gives_a_figure_that_says_what_is_missing(fn):
    fig = fn({})
    assert fig.data == ()
    assert "recorded" in fig.layout.annotations[0].text or "logged" in \
        fig.layout.annotations[0].text


def test_layer_names_are_escaped_in_figures():
    h = synthetic_history()
    h["layers"] = {XSS: h["layers"]["fc1"]}
    fig = tr.gradient_flow(h)
    assert list(fig.data[0].y) == ["&lt;script&gt;alert(1)&lt;/script&gt;"]


def test_history_object_and_its_dict_give_the_same_figure():
    from explain.monitor import History
    d = synthetic_history()
    a = tr.gradient_flow(History(**d)).to_dict()
    b = tr.gradient_flow(d).to_dict()
    assert a == b
