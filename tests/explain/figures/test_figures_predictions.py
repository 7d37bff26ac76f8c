"""explain.figures.predictions and explain.figures.attention: built from plain values."""

from __future__ import annotations

import pytest

import explain
from explain.figures import attention as FAT
from explain.figures import predictions as FP


def test_class_probabilities_colours_the_true_class():
    # Act
    fig = FP.class_probabilities([0.1, 0.7, 0.2], ["cat", "<b>dog</b>", "emu"], true_class=2,
                                 sample=4)
    # Assert
    bar = fig.data[0]
    assert list(bar.x) == ["cat", "&lt;b&gt;dog&lt;/b&gt;", "emu"]
    assert list(bar.y) == pytest.approx([0.1, 0.7, 0.2])
    assert [c == FP.TRUE_COLOR for c in bar.marker.color] == [False, False, True]
    assert fig.layout.title.text == "Predicted probabilities of sample #4 (green = true class)"
    assert tuple(fig.layout.yaxis.range) == (0, 1)


def test_class_probabilities_needs_one_name_per_class():
    with pytest.raises(explain.DataMismatchError, match="Got 2 probabilities and 3 names"):
        FP.class_probabilities([0.5, 0.5], ["a", "b", "c"])


def test_selectable_confusion_matrix_has_one_marker_per_cell_with_its_indices():
    # Arrange
    matrix = [[5, 1, 0], [0, 4, 2], [1, 0, 3]]
    # Act
    fig = FP.selectable_confusion_matrix(matrix, ["a", "b", "c"])
    # Assert: the heatmap is performance.confusion_matrix's; the markers carry the cells
    heat, cells = fig.data
    assert [list(r) for r in heat.text] == [[str(v) for v in row] for row in matrix]
    assert heat.hoverinfo == "skip"
    assert len(cells.customdata) == 9
    assert [list(c) for c in cells.customdata][5] == [1, 2, 2]
    assert (cells.x[5], cells.y[5]) == ("c", "b")  # predicted on x, true on y
    assert fig.layout.clickmode == "event+select"


def test_attention_heatmap_labels_tokens_and_escapes_them():
    fig = FAT.attention_heatmap([[1.0, 0.0], [0.25, 0.75]], ["<i>", "ok"], layer=0)
    assert list(fig.data[0].x) == ["0:&lt;i&gt;", "1:ok"]
    assert [list(r) for r in fig.data[0].z] == [[1.0, 0.0], [0.25, 0.75]]
    assert fig.layout.title.text == "Attention of layer 1 (mean over heads)"


def test_attention_heatmap_refuses_weights_that_do_not_match_the_tokens():
    with pytest.raises(explain.DataMismatchError, match=r"Got weights of shape \[2, 2\] and 3 tokens"):
        FAT.attention_heatmap([[1.0, 0.0], [0.0, 1.0]], ["a", "b", "c"])
