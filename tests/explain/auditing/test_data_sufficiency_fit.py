"""A learning curve with its power-law fit: the check grades the fit, the section keeps it."""

from __future__ import annotations

import torch

import explain
from explain.auditing.sections import DataSufficiencySection
from explain.checks.data_sufficiency import LearningCurve
from explain.findings import Severity
from explain.report.markdown import md_escape, render_markdown

# The mlp-digits curve measured here: the last segment rises 0.033 per doubling while the
# saturating fit predicts no gain from doubling the data.
SATURATED = LearningCurve(((179, 0.883), (359, 0.944), (718, 0.939), (1437, 0.972)),
                          (0.967, 109.9, 1.386), 0.0, 0.0, 0.002)
STEEP = LearningCurve(((100, 0.6), (200, 0.7), (400, 0.78)), (0.95, 5.0, 0.5), 0.031, 0.021,
                      0.045)


def _audit(curve):
    model = torch.nn.Linear(4, 3)
    x, y = torch.randn(20, 4), torch.randint(0, 3, (20,))
    return explain.audit(model, (x, y), samples=0, checks=["data-sufficiency"],
                         learning_curve=curve)


def test_the_fit_that_saturated_passes_although_the_last_segment_rose():
    report = _audit(SATURATED)

    (finding,) = report.checked
    assert finding.severity is Severity.PASS
    assert finding.summary == ("The learning curve has flattened: the power law fitted to the "
                               "learning curve predicts +0.000 (90% interval +0.000 to +0.002) "
                               "from doubling the training set beyond 1437 samples (score "
                               "0.972), at or below 0.02.")
    assert finding.evidence["gain_per_doubling"] > 0.03     # what the points alone would say
    assert finding.evidence["fit"]["predicted_gain"] == 0.0


def test_the_fit_that_still_climbs_warns():
    (finding,) = _audit(STEEP).checked

    assert finding.severity is Severity.WARN
    assert finding.summary == ("More data would help: the power law fitted to the learning "
                               "curve predicts +0.031 (90% interval +0.021 to +0.045) from "
                               "doubling the training set beyond 400 samples (score 0.78), "
                               "above 0.02.")


def test_the_threshold_moves_the_fitted_grade():
    model = torch.nn.Linear(4, 3)
    x, y = torch.randn(20, 4), torch.randint(0, 3, (20,))

    report = explain.audit(model, (x, y), samples=0, checks=["data-sufficiency"],
                           learning_curve=STEEP, thresholds={"sufficiency_gain": 0.05})

    assert report.checked[0].severity is Severity.PASS


def test_plain_points_are_still_graded_by_the_last_segment():
    (finding,) = _audit(list(SATURATED.points)).checked

    assert finding.severity is Severity.WARN and "fit" not in finding.evidence
    assert finding.summary.startswith("More data would help: the validation score rose 0.0")


def test_the_section_keeps_the_fit_in_json_and_markdown():
    report = _audit(STEEP)

    sec = report.section(DataSufficiencySection)
    again = explain.Report.from_dict(report.to_dict()).section(DataSufficiencySection)
    assert (again.params, again.predicted_gain, again.gain_low, again.gain_high) == (
        (0.95, 5.0, 0.5), 0.031, 0.021, 0.045)
    assert again.prediction == sec.prediction == STEEP.summary
    assert sec.prediction == ("Doubling the data would help: validation accuracy 0.780 with 400 "
                              "samples, predicted 0.811 with 800 (gain +0.031, 90% interval "
                              "+0.021 to +0.045).")
    assert sec.fit_formula == "score(n) = 0.950 - 5 * n^-0.50"
    assert (f"{md_escape(sec.prediction)} Fitted power law: `score(n) = 0.950 - 5 * n^-0.50`."
            in render_markdown(report))


def test_html_shows_the_prediction_and_the_formula():
    from explain.report.html import render_html

    html = render_html(_audit(STEEP))

    assert ("<p>Doubling the data would help: validation accuracy 0.780 with 400 samples, "
            "predicted 0.811 with 800 (gain +0.031, 90% interval +0.021 to +0.045).</p><p "
            "class='muted'>Fitted power law: <code>score(n) = 0.950 - 5 * n^-0.50</code>.</p>"
            ) in html


def test_without_a_fit_the_section_has_none():
    sec = _audit(list(STEEP.points)).section(DataSufficiencySection)

    assert (sec.params, sec.prediction, sec.fit_formula) == (None, "", "")
    assert sec.curve == ((100.0, 0.6), (200.0, 0.7), (400.0, 0.78))
