"""Typed report sections: the registry's conformance, /1 files loading, one presentation table,
trust findings from Verdict values, and a healthy run reading healthy."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from explain.auditing import Report
from explain.auditing.auditor import trust_finding
from explain.auditing.report import SCHEMA_V1, upgrade_v1
from explain.auditing.sections import (
    SECTIONS,
    ExplainedSample,
    ExplanationsSection,
    MethodResult,
    PerformanceSection,
    TrainingSection,
    section_type,
)
from explain.card import Modality
from explain.figures.report import section_figures
from explain.findings import Finding, Severity
from explain.quality import Quality, Verdict
from explain.report import render_html, render_markdown

V1 = Path(__file__).parent / "data" / "report_v1.json"


# ----------------------------------------------------------------------------- registry


@pytest.mark.parametrize("kind", SECTIONS, ids=lambda k: k.name)
def test_every_section_type_round_trips_and_is_frozen(kind):
    # Arrange
    made, missing = kind(), kind.unavailable("Pass data=... to compute it.")
    # Act
    back = kind.from_dict(json.loads(json.dumps(missing.to_dict())))
    # Assert
    assert kind.name and kind.title and section_type(kind.name) is kind
    assert back == missing and back.reason == "Pass data=... to compute it."
    assert kind.from_dict(made.to_dict()) == made
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.available = False  # type: ignore[misc]


def test_section_names_are_unique_and_a_report_holds_one_of_each_in_order():
    assert len({k.name for k in SECTIONS}) == len(SECTIONS)
    r = Report(sections=(PerformanceSection(n=3), TrainingSection.unavailable("none")))
    assert [type(s) for s in r.sections] == list(SECTIONS)
    assert r.section(PerformanceSection).n == 3
    assert r.section(ExplanationsSection).reason == "This section was not computed."


# ----------------------------------------------------------------------------- schema /1


def test_a_report_1_file_loads_typed_with_its_non_finite_values_and_renders():
    # Arrange: written by the audit of commit 01187a2 (schema deepscope.report/1)
    d = json.loads(V1.read_text())
    assert d["schema"] == SCHEMA_V1
    # Act
    r = Report.from_dict(d)
    # Assert
    assert r.schema == "deepscope.report/2"
    assert r.severity == Severity.FAIL
    assert r.verdict.headline == "1 problem needs attention: non-finite (fail)."
    assert [f.check for f in r.findings][:1] == ["non-finite"]
    assert r.section(TrainingSection).history.layers["fc2"]["grad_norm"][2] == float("inf")
    sec = r.section(ExplanationsSection)
    assert [m.verdict for m in sec.methods] == [Verdict.TRUSTWORTHY, Verdict.TRUSTWORTHY]
    assert sec.methods[0].values.shape == (2, 4) and sec.modality == Modality.TABULAR
    assert sec.methods[0].values[0].tolist() == d["sections"]["explanations"]["samples"][0][
        "attributions"]["saliency"]
    assert r.section(PerformanceSection).accuracy == d["sections"]["performance"]["accuracy"]
    md = render_markdown(r)
    assert "| saliency | saliency | ✅ trustworthy |" in md  # the trust icon shows
    assert Report.from_dict(r.to_dict()) == r


def test_upgrade_v1_bumps_the_schema_and_drops_the_old_verdict():
    d = upgrade_v1({"schema": SCHEMA_V1, "title": "t", "verdict": {"severity": "info",
                                                                   "headline": "old"},
                    "findings": [{"check": "x", "severity": "info", "summary": "s"}]})
    assert d == {"schema": "deepscope.report/2", "title": "t", "not_checked": [],
                 "findings": [{"check": "x", "severity": "info", "summary": "s"}]}
    assert Report.from_dict({**d, "schema": SCHEMA_V1}).verdict.headline.startswith("Healthy")


# ----------------------------------------------------------------------------- presentation


def _quality(verdict: Verdict) -> Quality:
    return Quality(method="saliency", verdict=verdict, summary=f"<{verdict.value}>", n_samples=1)


def _explanations(*verdicts: Verdict, error: bool = False) -> ExplanationsSection:
    methods = [MethodResult(f"m{i}", used=f"m{i}", values=torch.zeros(1, 3),
                            quality=_quality(v)) for i, v in enumerate(verdicts)]
    if error:
        methods.append(MethodResult("broken", error="RuntimeError: no gradient"))
    return ExplanationsSection(modality=Modality.TABULAR, class_names=("a", "b"),
                               samples=(ExplainedSample(0, 1, 0.9, 1, torch.zeros(3)),),
                               methods=tuple(methods))


def test_every_severity_and_every_verdict_shows_its_icon_and_colour():
    # Arrange: one finding per severity, one method per verdict
    findings = tuple(Finding(f"check-{s.value}", s, f"summary {s.value}") for s in Severity)
    r = Report(findings=findings, sections=(_explanations(*Verdict),))
    # Act
    html, md = render_html(r), render_markdown(r)
    # Assert
    for s in Severity:
        if s == Severity.SKIPPED:
            assert f"{s.icon} Not checked: check-skipped — summary skipped" in md
        else:
            assert f"| {s.icon} {s.value} | check-{s.value} |" in md
        assert f'background:{s.color}">{s.icon} {s.label}</span>' in html
    for v in Verdict:
        sev = v.severity
        assert f"| {sev.icon} {v.label} |" in md
        assert f'background:{sev.color}">{sev.icon} {v.label}</span>' in html


# ----------------------------------------------------------------------------- trust finding


@pytest.mark.parametrize("verdicts, error, severity, start", [
    ((Verdict.TRUSTWORTHY, Verdict.TRUSTWORTHY), False, Severity.PASS,
     "Every attribution method was judged trustworthy (m0: trustworthy, m1: trustworthy)."),
    ((Verdict.TRUSTWORTHY, Verdict.DOUBTFUL), False, Severity.WARN,
     "Explanations of m1 are doubtful or could not be computed (m0: trustworthy, m1: doubtful)."),
    ((Verdict.TRUSTWORTHY,), True, Severity.WARN,
     "Explanations of broken are doubtful or could not be computed (m0: trustworthy)."),
    ((Verdict.FAILS_SANITY, Verdict.DOUBTFUL), False, Severity.WARN,
     "1 attribution method(s) failed the sanity check (m0: fails-sanity, m1: doubtful)."),
])
def test_trust_finding_is_built_from_verdicts_and_capped_at_warn(verdicts, error, severity,
                                                                 start):
    f = trust_finding(_explanations(*verdicts, error=error))
    assert f is not None and f.check == "explanation-trust"
    assert f.severity == severity and f.summary == start
    assert f.evidence["verdicts"] == {f"m{i}": v.value for i, v in enumerate(verdicts)}


def test_no_trust_finding_without_graded_or_failed_methods():
    assert trust_finding(ExplanationsSection.unavailable("samples=0")) is None


# ----------------------------------------------------------------------------- healthy run


def test_a_run_without_problems_reads_healthy_and_skipped_checks_are_listed_apart():
    # Arrange
    findings = (Finding("overfitting", Severity.PASS, "gap 0.01"),
                Finding("data-sufficiency", Severity.INFO, "no curve"),
                Finding("spectral", Severity.SKIPPED, "The model has no weight matrix."))
    # Act
    r = Report(title="ok", findings=findings)
    d, md, html = r.to_dict(), render_markdown(r), render_html(r)
    # Assert
    assert r.severity == Severity.PASS
    assert r.verdict.headline == ("Healthy: 1 of 2 checks passed; 1 could not fully run (see "
                                  "their notes); 1 not checked (listed apart).")
    assert [f["check"] for f in d["findings"]] == ["data-sufficiency", "overfitting"]
    assert d["not_checked"] == [{"check": "spectral", "severity": "skipped", "remedy": "",
                                 "summary": "The model has no weight matrix.", "evidence": {}}]
    assert "Not checked: spectral — The model has no weight matrix." in md
    assert "| ⏭️ skipped |" not in md  # not in the findings table
    assert "Not checked: <b>spectral</b> — The model has no weight matrix." in html
    assert Report.from_dict(d).not_checked == (findings[2],)
    assert r.findings_at_least("warn") == []


def test_only_skipped_findings_verify_nothing():
    r = Report(findings=(Finding("spectral", Severity.SKIPPED, "no weights"),))
    assert r.severity == Severity.SKIPPED
    assert r.verdict.headline == ("No checks ran: nothing was found, and nothing was verified. "
                                  "1 check did not apply (listed apart).")


# ----------------------------------------------------------------------------- codec, figures


def test_finding_json_keeps_non_finite_evidence_through_the_codec():
    f = Finding("non-finite", Severity.FAIL, "loss nan", {"loss": [1.0, float("nan")]})
    d = f.to_dict()
    text = json.dumps(d, allow_nan=False)
    back = Finding.from_dict(json.loads(text))
    assert d["nonfinite_values"] == [{"path": "/evidence/loss/1", "value": "nan"}]
    assert back.evidence["loss"][0] == 1.0 and back.evidence["loss"][1] != back.evidence["loss"][1]


def test_section_figures_draw_the_typed_maps_without_rebuilding_attributions():
    # Arrange: two methods' maps as tensors, 2 samples of 3 features
    values = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    sec = ExplanationsSection(
        modality=Modality.TABULAR, class_names=("a", "b"),
        samples=(ExplainedSample(0, 1, 0.9, 1), ExplainedSample(5, 0, 0.8, 0)),
        methods=(MethodResult("saliency", values=values), MethodResult("ig", values=-values)))
    # Act
    figs = section_figures(Report(sections=(sec,)))
    # Assert
    (grid,) = figs["explanations"]
    assert [list(t.z[0]) for t in grid.data] == [[1.0, -2.0, 0.5], [-1.0, 2.0, -0.5],
                                                 [0.0, 3.0, -1.0], [-0.0, -3.0, 1.0]]
    assert set(figs) == {s.name for s in SECTIONS} and figs["card"] == []
