"""Report: strict versioned JSON, exact round trip, atomic save, HTML/Markdown that escape."""

from __future__ import annotations

import json
import os
import re

import pytest

from explain.auditing import SCHEMA, Report, audit
from explain.auditing.sections import (
    CalibrationBin,
    ClassMetrics,
    Mistake,
    TrainingSection,
)
from explain.errors import CorruptRunError, InvalidInputError, InvalidTypeError
from explain.figures import performance as pf
from explain.findings import Finding, Severity
from explain.report import md_escape, render_html, render_markdown
from tests.fixtures.audit import XSS, synthetic_history, tiny_data, trained_mlp


def _strict_loads(text: str):
    def refuse(constant):
        raise ValueError(f"non-strict JSON constant {constant}")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def report() -> Report:
    import torch
    torch.manual_seed(0)
    model, _ = trained_mlp(monitor=False)
    from explain.monitor import History
    return audit(model, tiny_data(), history=History(**synthetic_history()),
                 class_names=["a", XSS, "c"], samples=0, learning_curve=[(30, 0.5), (90, 0.8)],
                 checks=["non-finite", "overfitting", "vanishing-gradients"])


def test_json_is_strict_versioned_and_flags_non_finite_values(report):
    text = report.to_json()
    d = _strict_loads(text)
    assert d["schema"] == SCHEMA == "deepscope.report/2"
    assert set(d) == {"schema", "title", "created", "verdict", "findings", "not_checked",
                      "sections", "timings", "nonfinite_values"}
    assert {"path": "/sections/training/history/layers/fc2/grad_norm/2", "value": "inf"} in \
        d["nonfinite_values"]
    assert d["sections"]["training"]["history"]["layers"]["fc2"]["grad_norm"][2] is None
    assert [f["severity"] for f in d["findings"]] == sorted(
        (f["severity"] for f in d["findings"]), key=lambda s: -Severity(s).rank)


def test_from_dict_round_trip_restores_everything(report):
    d = report.to_dict()
    back = Report.from_dict(_strict_loads(json.dumps(d)))
    assert back.to_dict() == d
    assert back.section(TrainingSection).history.layers["fc2"]["grad_norm"][2] == float("inf")
    assert back == report
    assert back.findings == report.findings and back.verdict == report.verdict


def test_from_dict_refuses_other_schemas_and_bad_flags(report):
    d = report.to_dict()
    with pytest.raises(CorruptRunError, match="Report 'schema' must be 'deepscope.report/2' "
                                              r"\(or 'deepscope.report/1'\)"):
        Report.from_dict({**d, "schema": "deepscope.report/0"})
    with pytest.raises(CorruptRunError, match="Report: the 'nonfinite_values' path '/nope/1' "
                                              "does not point to a null value"):
        Report.from_dict({**d, "nonfinite_values": [{"path": "/nope/1", "value": "nan"}]})
    with pytest.raises(CorruptRunError, match="Report: each 'nonfinite_values' entry must be"):
        Report.from_dict({**d, "nonfinite_values": [{"path": "/title", "value": "1e999"}]})
    with pytest.raises(CorruptRunError, match="Report section 'shallow' is unknown"):
        Report.from_dict({**d, "sections": {**d["sections"], "shallow": {}}})


def test_report_is_frozen_and_checks_its_findings():
    r = Report(title="t")
    with pytest.raises(AttributeError):
        r.title = "other"  # type: ignore[misc]
    with pytest.raises(InvalidTypeError, match="Report 'findings' must be explain.Finding"):
        Report(findings=({"check": "x"},))  # type: ignore[arg-type]


@pytest.mark.parametrize("ext", ["html", "json", "md"])
def test_save_picks_the_format_by_extension_and_leaves_no_temp_file(report, tmp_path, ext):
    path = report.save(tmp_path / f"report.{ext}")
    text = path.read_text(encoding="utf-8")
    assert os.listdir(tmp_path) == [f"report.{ext}"]
    if ext == "json":
        assert Report.from_dict(_strict_loads(text)).to_dict() == report.to_dict()
    elif ext == "html":
        assert text.startswith("<!DOCTYPE html>")
    else:
        assert text.startswith("# Audit of Sequential")


def test_save_rejects_unknown_extensions(report, tmp_path):
    with pytest.raises(InvalidInputError, match="'path extension' parameter of Report.save must "
                                                "be one of '.html', '.htm', '.json', '.md'"):
        report.save(tmp_path / "report.pdf")
    assert os.listdir(tmp_path) == []


def test_html_embeds_plotly_once_and_requests_nothing(report):
    from plotly.offline import get_plotlyjs
    html = render_html(report)
    bundle = get_plotlyjs()
    assert html.count(bundle[:500]) == 1 and html.count(bundle[-500:]) == 1  # plotly.js once
    assert len(re.findall(r"Plotly\.newPlot\(", html)) >= 7
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)\s*=\s*[\"']?https?:", html)
    assert "cdn.plot.ly/plotly" not in html.split("</head>")[1]
    assert "default-src 'none'" in html  # CSP: no network even if something slipped in


def test_html_escapes_user_strings(report):
    html = render_html(report)
    body = html.split("</head>", 1)[1]
    assert XSS not in body.replace("\\u003cscript\\u003e", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_markdown_has_tables_and_escapes(report):
    md = render_markdown(report)
    assert "| class | precision | recall | F1 | support |" in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md and XSS not in md
    assert "> Not available: samples=0: no inputs were explained." in md
    assert "| 30 | 0.500 |" in md  # the learning curve
    assert md_escape("a|b`c") == "a\\|b\\`c"


def test_findings_render_with_remedy_and_evidence():
    f = Finding("overfitting", Severity.FAIL, "gap 0.2 <b>", {"best_epoch": 3}, "stop at 3")
    r = Report(title="x", findings=(f,))
    html, md = render_html(r), render_markdown(r)
    assert "gap 0.2 &lt;b&gt;" in html and "stop at 3" in html and "best_epoch" in html
    assert "| ❌ fail | overfitting | gap 0.2 &lt;b&gt; | stop at 3 |" in md
    assert r.findings_at_least("warn") == [f] and r.findings_at_least(Severity.FAIL) == [f]


# ----------------------------------------------------------------------------- performance figs


def test_confusion_matrix_figure_shows_counts_and_row_rates():
    fig = pf.confusion_matrix([[3, 1], [0, 4]], ["cat", XSS])
    (heat,) = fig.data
    assert [list(r) for r in heat.z] == [[0.75, 0.25], [0.0, 1.0]]
    assert [list(r) for r in heat.text] == [["3", "1"], ["0", "4"]]
    assert list(heat.x)[1] == "&lt;script&gt;alert(1)&lt;/script&gt;"


def test_reliability_diagram_puts_ece_in_the_title_and_skips_empty_bins():
    bins = [{"lo": 0.0, "hi": 0.5, "count": 0, "accuracy": None, "confidence": None},
            {"lo": 0.5, "hi": 1.0, "count": 4, "accuracy": 0.5, "confidence": 0.8}]
    fig = pf.reliability_diagram([CalibrationBin.from_dict(b) for b in bins], 0.3)
    assert "ECE = 0.300" in fig.layout.title.text
    assert list(fig.data[0].x) == [0.75] and list(fig.data[0].y) == [0.5]


def test_per_class_and_mistake_figures_carry_the_numbers():
    per_class = [{"class": "a", "precision": 0.5, "recall": 1.0, "support": 2},
                 {"class": "b", "precision": None, "recall": 0.0, "support": 1}]
    fig = pf.per_class_metrics([ClassMetrics.from_dict(r) for r in per_class])
    assert list(fig.data[0].y) == [0.5, None] and list(fig.data[1].y) == [1.0, 0.0]
    fig = pf.confident_mistakes([Mistake(7, 0, 1, 0.9)], ["a", "b"])
    assert list(fig.data[0].y) == ["#7: a → b"] and list(fig.data[0].x) == [0.9]


def test_mistake_gallery_shows_each_image_with_true_and_predicted_class():
    img = [[[0.0, 1.0], [1.0, 0.0]]]
    mistakes = [Mistake(i, 0, 1, 0.5) for i in range(7)]
    fig = pf.mistake_gallery([img] * 7, mistakes, [XSS, "b"], per_row=5)
    assert len(fig.data) == 7 and fig.data[0].type == "heatmap"
    assert fig.layout.annotations[6].text == "#6: &lt;script&gt;alert(1)&lt;/script&gt; → b (0.50)"
    assert fig.layout.height == 60 + 190 * 2
