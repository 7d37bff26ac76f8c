"""Plotly figures of attributions and of their trust metrics."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from explain import Attribution
from explain.errors import InvalidInputError
from explain.figures import _style
from explain.figures.attribution import (
    agreement_heatmap,
    deletion_curve,
    image_overlay,
    method_grid,
    sanity_curve,
    sequence_heatmap,
    token_figure,
    token_html,
)
from explain.quality import Quality, Verdict


def _attr(values, method="integrated_gradients"):
    n = values.shape[0]
    return Attribution(values=values, method=method, target=torch.zeros(n, dtype=torch.long),
                       inputs=torch.zeros_like(values))


@pytest.fixture
def quality():
    fr = [0.0, 0.5, 1.0]
    return Quality(
        method="saliency", verdict=Verdict.DOUBTFUL, summary="s", n_samples=2,
        metrics=("faithfulness", "sanity"),
        medians={"deletion_auc": 0.2, "insertion_auc": 0.8, "random_deletion_auc": 0.5,
                 "random_insertion_auc": 0.55, "sanity": 0.1},
        curves={"fraction": fr, "deletion": [0.9, 0.1, 0.05], "insertion": [0.1, 0.8, 0.9],
                "random_deletion": [0.9, 0.5, 0.05], "random_insertion": [0.1, 0.5, 0.9]},
        sanity_curve={"layer": ["fc2", "<fc1>"], "correlation": [0.7, 0.1],
                      "layers": ["fc2", "<fc1>"]})


def test_grayscale_overlay_has_image_and_symmetric_diverging_heatmap():
    values = torch.zeros(1, 6, 5)
    values[0, 1, 2], values[0, 3, 3] = 2.0, -0.5

    fig = image_overlay(torch.rand(1, 6, 5), values, class_name="seven", method="saliency")

    background, overlay = fig.data
    assert background.type == "heatmap" and background.showscale is False
    assert np.asarray(overlay.z).shape == (6, 5)
    assert (overlay.zmin, overlay.zmid, overlay.zmax) == (-2.0, 0.0, 2.0)
    assert overlay.colorscale[0][1] != overlay.colorscale[-1][1]
    assert overlay.colorscale[2] == (0.5, "rgba(247,247,247,0)")   # zero is transparent
    assert 0 < overlay.opacity <= 1
    assert fig.layout.title.text == "saliency attribution for class 'seven' over the input image"
    assert fig.layout.yaxis.autorange == "reversed"


def test_rgb_overlay_uses_an_image_trace_and_sums_channels():
    image = torch.rand(3, 4, 4)
    values = torch.ones(3, 4, 4)

    fig = image_overlay(image, values)

    assert [t.type for t in fig.data] == ["image", "heatmap"]
    assert np.asarray(fig.data[0].z).shape == (4, 4, 3)
    assert np.asarray(fig.data[1].z)[0, 0] == 3.0


def test_overlay_refuses_mismatched_map():
    with pytest.raises(InvalidInputError, match="does not match the image"):
        image_overlay(torch.rand(1, 4, 4), torch.rand(1, 5, 5))


def test_token_html_escapes_every_token():
    html = token_html(["<script>alert(1)</script>", "good", '"q"'], [0.9, -0.3, 0.0])

    assert "<script>" not in html and "</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&quot;q&quot;" in html
    assert html.count("<span") == 3
    assert "rgba(214,39,40,1.000)" in html and "rgba(31,119,180,0.333)" in html


def test_token_figure_boxes_and_escaping():
    tokens = ["the", "<b>bold</b>", "movie"] + [f"w{i}" for i in range(10)]
    scores = np.linspace(-1, 1, len(tokens))

    fig = token_figure(tokens, scores, per_row=5, class_name="<pos>", method="integrated_gradients")

    (trace,) = fig.data
    z = np.asarray(trace.z, dtype=float)
    assert z.shape == (3, 5) and np.isnan(z[2, 3:]).all()
    text = np.asarray(trace.text)
    assert text[0, 1] == "&lt;b&gt;bold&lt;/b&gt;"
    assert np.asarray(trace.customdata)[0, 1] == "&lt;b&gt;bold&lt;/b&gt;"
    assert "<b>" not in json.dumps(fig.to_plotly_json()["data"], default=str)
    assert (trace.zmin, trace.zmax) == (-1.0, 1.0)
    assert fig.layout.title.text == ("integrated_gradients attribution for class '&lt;pos&gt;' "
                                     "per token")


def test_token_functions_need_one_score_per_token():
    with pytest.raises(InvalidInputError, match="one score per token"):
        token_html(["a", "b"], [1.0])


def test_sequence_heatmap_is_features_by_time_and_drops_padding():
    values = torch.randn(10, 3)

    fig = sequence_heatmap(values, feature_names=["f<0>", "f1", "f2"], length=7)

    (trace,) = fig.data
    assert np.asarray(trace.z).shape == (3, 7)
    assert list(trace.y) == ["f&lt;0&gt;", "f1", "f2"]
    assert trace.zmid == 0 and trace.zmin == -trace.zmax
    assert fig.layout.xaxis.title.text == "time step"
    assert "per time step and feature" in fig.layout.title.text


def test_method_grid_has_rows_of_samples_and_columns_of_methods():
    a = _attr(torch.randn(5, 1, 6, 6), "saliency")
    b = _attr(torch.randn(5, 1, 6, 6), "<ig>")

    fig = method_grid([a, b], max_samples=3)

    assert len(fig.data) == 6
    assert all(t.type == "heatmap" and t.showscale is False for t in fig.data)
    assert all(np.asarray(t.z).shape == (6, 6) for t in fig.data)
    titles = [ann.text for ann in fig.layout.annotations]
    assert {"saliency", "&lt;ig&gt;", "sample 0", "sample 2"} <= set(titles)
    assert fig.layout.title.text == "Attributions of 3 samples by 2 methods"
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.yaxis6.scaleanchor == "x6"
    # each cell has its own symmetric scale
    assert fig.data[0].zmax == pytest.approx(float(a.values[0].abs().max()))


def test_method_grid_for_tabular_rows_and_bad_sample_index():
    a = _attr(torch.randn(4, 7), "saliency")

    fig = method_grid({"grad": a}, samples=[1, 3])

    assert [np.asarray(t.z).shape for t in fig.data] == [(1, 7), (1, 7)]
    with pytest.raises(InvalidInputError, match="indices below 4"):
        method_grid([a], samples=[9])


def test_deletion_curve_has_four_lines_with_dashed_random_baselines(quality):
    fig = deletion_curve(quality)

    names = [t.name for t in fig.data]
    assert names == ["deletion (AUC 0.20)", "random deletion (AUC 0.50)",
                     "insertion (AUC 0.80)", "random insertion (AUC 0.55)"]
    assert [t.line.dash for t in fig.data] == ["solid", "dash", "solid", "dash"]
    assert fig.data[0].line.color == fig.data[1].line.color
    assert list(fig.data[0].x) == [0.0, 0.5, 1.0]
    assert fig.layout.title.text == "saliency: deletion and insertion curves vs random order"
    assert deletion_curve(quality.to_dict()).to_plotly_json()["data"] == \
        fig.to_plotly_json()["data"]


def test_sanity_curve_and_agreement_heatmap(quality):
    fig = sanity_curve(quality)
    heat = agreement_heatmap(np.array([[1.0, -0.2], [-0.2, 1.0]]), ["ig", "<s>"])

    assert list(fig.data[0].x) == ["(none)", "fc2", "&lt;fc1&gt;"]
    assert list(fig.data[0].y) == [1.0, 0.7, 0.1]
    assert any(s.type == "line" and s.y0 == 0.5 for s in fig.layout.shapes)
    assert list(heat.data[0].x) == ["ig", "&lt;s&gt;"]
    assert (heat.data[0].zmin, heat.data[0].zmax) == (-1, 1)
    with pytest.raises(InvalidInputError, match="2 x 2 matrix"):
        agreement_heatmap(np.eye(3), ["a", "b"])


def test_style_helpers():
    fig = _style.apply_layout(go.Figure(), "T", height=300)

    assert fig.layout.height == 300 and fig.layout.template.layout.font is not None
    assert _style.symmetric_limit([[0.0, -3.0], [float("nan"), 1.0]]) == 3.0
    assert _style.symmetric_limit([0.0]) == 1.0
    assert _style.color_for(len(_style.PALETTE)) == _style.PALETTE[0]
    assert _style.escape("a<b>&") == "a&lt;b&gt;&amp;"
