"""The four question checks (calibration, distribution-shift, shallow-baseline, robustness):
measurements on synthetic data with known answers, and each grade on both sides of its
threshold with the exact sentence."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import explain
from explain.auditing import Report
from explain.auditing.baselines import baseline_section, paired_bootstrap
from explain.auditing.calibration import (
    FIT_ON_VAL,
    TemperatureScaled,
    calibrate,
    calibration_section,
    fit_temperature,
)
from explain.auditing.corruptions import CORRUPTIONS, corrupt
from explain.auditing.robustness import robustness_section
from explain.auditing.sections import (
    BaselineScore,
    CalibrationSection,
    ClassShift,
    CorruptionCurve,
    DistributionShiftSection,
    RobustnessSection,
    ShallowBaselineSection,
    ShiftTest,
)
from explain.auditing.shift import holm, mmd_test
from explain.card import Modality
from explain.checks import get_check
from explain.checks.base import CheckContext
from explain.findings import Severity


def overconfident(n: int = 2000, k: int = 4, scale: float = 4.0, seed: int = 0):
    """Logits whose softmax is calibrated at scale 1 (labels drawn from it), sharpened."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, k, generator=g) * 1.5
    y = torch.multinomial(torch.softmax(base, 1), 1, generator=g).flatten()
    return base * scale, y


# ------------------------------------------------------------------------------ calibration
def test_temperature_scaling_lowers_ece_of_an_overconfident_model_and_keeps_accuracy():
    # Arrange: test and validation logits of the same over-confident model
    logits, y = overconfident(seed=0)
    val_logits, val_y = overconfident(seed=1)
    # Act
    sec = calibration_section(logits, y, val_logits, val_y)
    # Assert
    assert sec.temperature == pytest.approx(4.0, rel=0.15)
    assert sec.ece > 0.1 and sec.ece_low > 0.05 and sec.ece_after < 0.03
    assert sec.accuracy_after == sec.accuracy and sec.nll_after < sec.nll
    assert sec.fit_on == FIT_ON_VAL and sec.over_confident
    assert sec.ece_low <= sec.ece <= sec.ece_high


def test_without_validation_data_the_temperature_is_cross_fitted():
    logits, y = overconfident(seed=2)
    sec = calibration_section(logits, y)
    assert sec.fit_on.startswith("a 2-fold cross-fit") and sec.ece_after < 0.04


def test_calibrate_wraps_the_model_with_a_fitted_temperature():
    # Arrange: a linear model made over-confident by scaling its weights
    torch.manual_seed(0)
    teacher = nn.Linear(6, 3)
    x = torch.randn(1500, 6)
    y = torch.multinomial(torch.softmax(teacher(x), 1), 1).flatten().detach()
    sharp = nn.Linear(6, 3)
    sharp.load_state_dict({k: v * 5 for k, v in teacher.state_dict().items()})
    # Act
    scaled = explain.calibrate(sharp, (x, y))
    # Assert
    assert isinstance(scaled, TemperatureScaled)
    assert float(scaled.temperature) == pytest.approx(5.0, rel=0.2)
    with torch.no_grad():
        assert torch.equal(scaled(x).argmax(1), sharp(x).argmax(1))
        before = calibration_section(sharp(x), y).ece
        after = calibration_section(scaled(x), y).ece
    assert after < before / 2


def test_calibrate_rejects_unlabelled_data():
    with pytest.raises(explain.InvalidInputError, match="calibrate 'val_data' must be labelled"):
        calibrate(nn.Linear(2, 2), torch.randn(5, 2))


def test_fit_temperature_of_calibrated_logits_is_one():
    logits, y = overconfident(scale=1.0, seed=3)
    assert fit_temperature(logits, y) == pytest.approx(1.0, abs=0.12)


def _cal(ece_low: float, **kw) -> CalibrationSection:
    values = dict(n=500, n_bins=15, accuracy=0.9, confidence=0.97, ece=ece_low + 0.02,
                  ece_low=ece_low, ece_high=ece_low + 0.04, mce=0.2, nll=0.5, temperature=1.8,
                  fit_on="validation data", ece_after=0.015, mce_after=0.1, nll_after=0.3,
                  accuracy_after=0.9)
    return CalibrationSection(**{**values, **kw})


def test_calibration_warns_when_the_lower_bound_exceeds_the_threshold():
    f = get_check("calibration").run(CheckContext(calibration=_cal(0.06)))
    assert f.severity is Severity.WARN
    assert f.summary == (
        "The probabilities are miscalibrated: expected calibration error 0.08 (95% interval "
        "0.06-0.1, 15 bins, 500 samples), above 0.05; the model is over-confident (mean "
        "confidence 0.97, accuracy 0.9). Temperature scaling (T=1.8, fit on validation data) "
        "gives 0.015 with accuracy unchanged (0.9 -> 0.9).")
    assert f.remedy.startswith("Use explain.calibrate(model, val_data)")


def test_calibration_passes_when_the_lower_bound_is_at_or_below_the_threshold():
    f = get_check("calibration").run(CheckContext(calibration=_cal(0.05)))
    assert f.severity is Severity.PASS
    assert f.summary == (
        "The probabilities are calibrated: expected calibration error 0.07 (95% interval "
        "0.05-0.09, 15 bins, 500 samples); its lower bound is not above 0.05. Temperature "
        "scaling (T=1.8, fit on validation data) gives 0.015 with accuracy unchanged "
        "(0.9 -> 0.9).")
    assert f.evidence["thresholds"] == {"calibration_ece": 0.05}


def test_calibration_without_data_is_skipped_saying_how():
    f = get_check("calibration").run(CheckContext())
    assert f.severity is Severity.SKIPPED
    assert f.summary == "The calibration check needs labelled evaluation data; none was given."


# ---------------------------------------------------------------------------- distribution shift
def test_holm_adjusts_in_order_and_caps_at_one():
    assert holm([0.01, 0.04, 0.03]) == [0.03, 0.06, 0.06]
    assert holm([0.5, 0.9]) == [1.0, 1.0]


def test_mmd_finds_a_mean_shift_and_not_its_absence():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(150, 5, generator=g), torch.randn(150, 5, generator=g)
    assert mmd_test(a, b + 0.6)[1] <= 0.01
    assert mmd_test(a, b)[1] > 0.05


def test_drift_flags_shifted_inputs_and_names_the_most_shifted_class():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    ref, same, moved = torch.randn(300, 4), torch.randn(300, 4), torch.randn(300, 4) + 2.0
    quiet, loud = explain.drift(net, ref, same), explain.drift(net, ref, moved)
    assert quiet.severity is Severity.PASS and quiet.summary.startswith(
        "No shift detected (300 reference vs 300 current samples): every Holm-adjusted p-value "
        "is above alpha 0.05")
    assert loud.severity is Severity.WARN
    assert loud.evidence["p_adjusted"]["representation"] <= 0.05
    assert len(loud.evidence["most_shifted_classes"]) == 3


def _shift(p_mix: float) -> DistributionShiftSection:
    return DistributionShiftSection(
        reference="validation", current="evaluated", n_reference=500, n_current=400,
        tests=(ShiftTest("confidence", 0.1, 0.2, 0.4), ShiftTest("class mix", 30.0, p_mix / 3,
                                                                  p_mix),
               ShiftTest("representation", 0.01, 0.3, 0.4)),
        classes=(ClassShift("7", 0.1, 0.25, 5.2), ClassShift("1", 0.12, 0.1, -1.0)),
        mean_confidence_reference=0.95, mean_confidence_current=0.8)


def test_distribution_shift_grades_both_sides_of_alpha():
    warn = get_check("distribution-shift").run(CheckContext(shift=_shift(0.05)))
    ok = get_check("distribution-shift").run(CheckContext(shift=_shift(0.0501)))
    assert warn.severity is Severity.WARN and warn.summary == (
        "The data shifted (500 validation vs 400 evaluated samples): class mix differ at alpha "
        "0.05 after Holm correction (confidence p=0.4, class mix p=0.05, representation "
        "p=0.4). Mean confidence 0.95 -> 0.8; most shifted predicted class '7' (10% -> 25%).")
    assert ok.severity is Severity.PASS and ok.summary == (
        "No shift detected (500 validation vs 400 evaluated samples): every Holm-adjusted "
        "p-value is above alpha 0.05 (confidence p=0.4, class mix p=0.0501, representation "
        "p=0.4).")


# ------------------------------------------------------------------------------ shallow baseline
def test_paired_bootstrap_interval_contains_the_mean_difference():
    a = torch.tensor([1, 1, 1, 0] * 50, dtype=torch.bool)
    b = torch.tensor([1, 0, 1, 0] * 50, dtype=torch.bool)
    mean, lo, hi = paired_bootstrap(a, b)
    assert mean == pytest.approx(0.25) and lo < 0.25 < hi and lo > 0.15


def test_a_linear_task_is_won_by_the_shallow_baseline():
    # Arrange: a linearly separable tabular task and an untrained deep model
    torch.manual_seed(0)
    w = torch.randn(8)
    x = torch.randn(600, 8)
    y = (x @ w > 0).long()
    net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
    # Act
    sec = baseline_section(net, (x[:400], y[:400]), (x[400:], y[400:]), Modality.TABULAR)
    f = get_check("shallow-baseline").run(CheckContext(baseline=sec))
    # Assert
    assert [b.name for b in sec.baselines] == ["logistic regression", "gradient boosting"]
    assert sec.best == "logistic regression" and sec.best_score.accuracy > 0.95
    assert sec.baselines[0].parameters == 9 and sec.deep.parameters == 8 * 32 + 32 + 66
    assert sec.margin_high < 0 and f.severity is Severity.WARN
    assert f.summary.startswith("A shallow baseline is as good or better: logistic regression "
                                "scores ")


def _base(margin_low: float, margin: float) -> ShallowBaselineSection:
    return ShallowBaselineSection(
        deep=BaselineScore("deep model", 0.75, 1_000_000, 2.0),
        baselines=(BaselineScore("TF-IDF + logistic regression", 0.768, 10_000, 0.1, 1.0),),
        best="TF-IDF + logistic regression", margin=margin, margin_low=margin_low,
        margin_high=margin + 0.02, n_train=10000, n_test=1275)


def test_shallow_baseline_grades_both_sides_of_the_margin():
    check = get_check("shallow-baseline")
    worse = check.run(CheckContext(baseline=_base(-0.04, -0.018)))
    unclear = check.run(CheckContext(baseline=_base(0.0, 0.01)))
    better = check.run(CheckContext(baseline=_base(0.001, 0.02)))
    assert worse.severity is Severity.WARN and worse.summary == (
        "A shallow baseline is as good or better: TF-IDF + logistic regression scores 0.768 "
        "against the deep model's 0.75 on 1275 test samples (margin -0.018, 95% interval -0.040 "
        "to +0.002); the deep model has 100x the parameters and 20x the latency per sample.")
    assert unclear.severity is Severity.WARN and unclear.summary.startswith(
        "The deep model is not clearly better than a shallow baseline: ")
    assert better.severity is Severity.PASS and better.summary.startswith(
        "The deep model beats the best shallow baseline: ")


def test_shallow_baseline_without_training_data_says_how_to_enable_it():
    f = get_check("shallow-baseline").run(CheckContext())
    assert f.severity is Severity.SKIPPED and f.remedy.startswith("Pass train_data=(inputs, "
                                                                  "labels) to explain.audit")


# ------------------------------------------------------------------------------------ robustness
SAMPLES = {Modality.IMAGE: torch.rand(6, 1, 12, 12), Modality.SEQUENCE: torch.cat(
    [torch.randn(6, 8, 3), torch.zeros(6, 2, 3)], 1),
    Modality.TEXT: torch.cat([torch.randint(1, 50, (6, 10)), torch.zeros(6, 3, dtype=torch.long)],
                             1), Modality.TABULAR: torch.randn(6, 5)}
CASES = [(m, name) for m, table in CORRUPTIONS.items() for name in table]


@pytest.mark.parametrize(("modality", "name"), CASES, ids=[f"{m.value}-{n}" for m, n in CASES])
def test_every_corruption_keeps_shape_is_seeded_and_grows_with_severity(modality, name):
    x = SAMPLES[modality]
    outs = [corrupt(x, modality, name, s, seed=1) for s in range(1, 6)]
    assert all(o.shape == x.shape and o.dtype == x.dtype for o in outs)
    assert torch.equal(outs[0], corrupt(x, modality, name, 1, seed=1))
    dist = [float((o.double() != x.double()).double().mean() if modality == Modality.TEXT
                  else (o.double() - x.double()).abs().mean()) for o in outs]
    assert dist[-1] > 0 and dist[-1] >= dist[0]
    if modality == Modality.SEQUENCE:  # padding frames stay padding
        assert all(bool((o[:, 8:] == 0).all()) for o in outs)
    if modality == Modality.TEXT:  # the same tokens (or fewer), padding at the end
        assert all(bool((o[:, 10:] == 0).all()) for o in outs)


def test_robustness_curve_of_a_model_is_relative_to_clean_accuracy():
    torch.manual_seed(0)
    net = nn.Linear(5, 2)
    x = torch.randn(200, 5)
    y = net(x).argmax(1).detach()
    sec = robustness_section(net, x, y, Modality.TABULAR, n=100)
    assert sec.clean_accuracy == 1.0 and sec.n == 100
    noise = sec.curves[0]
    assert noise.relative == noise.accuracy and noise.relative[-1] < noise.relative[0] <= 1.0


def _rob(mild: float) -> RobustnessSection:
    return RobustnessSection(modality="image", n=300, clean_accuracy=0.98, curves=(
        CorruptionCurve("blur", (0.97, 0.9, 0.8, 0.7, 0.6), (0.99, 0.92, 0.82, 0.71, 0.61)),
        CorruptionCurve("contrast", (0.5,) * 5, (1 - mild, 0.5, 0.4, 0.3, 0.2))))


def test_robustness_grades_both_sides_of_the_mild_drop():
    warn = get_check("robustness").run(CheckContext(robustness=_rob(0.11)))
    ok = get_check("robustness").run(CheckContext(robustness=_rob(0.1)))
    assert warn.severity is Severity.WARN and warn.summary == (
        "Accuracy breaks under mild corruptions: clean accuracy 0.98 on 300 samples; at the "
        "mildest severity contrast costs 11% of it, more than 10% (1 of 2 corruptions: "
        "contrast).")
    assert ok.severity is Severity.PASS and ok.summary == (
        "Accuracy holds under mild corruptions: clean accuracy 0.98 on 300 samples; at the "
        "mildest severity contrast costs 10% of it, at most 10%; at the worst severity the "
        "model keeps 20% of its accuracy.")


# ---------------------------------------------------------------------------------- in the audit
def test_audit_fills_the_question_sections_and_they_round_trip(tmp_path):
    # Arrange
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    x = torch.randn(300, 6)
    y = net(x).argmax(1).detach()
    # Act
    report = explain.audit(net, (x[:150], y[:150]), samples=0, val_data=(x[150:], y[150:]),
                           train_data=(x[150:], y[150:]),
                           checks=["calibration", "robustness", "distribution-shift",
                                   "shallow-baseline"])
    # Assert
    assert sorted(f.check for f in report.findings) == [
        "calibration", "distribution-shift", "robustness", "shallow-baseline"]
    for kind in (CalibrationSection, ShallowBaselineSection, RobustnessSection,
                 DistributionShiftSection):
        assert report.section(kind).available, kind
    back = Report.from_dict(json.loads(report.save(tmp_path / "r.json").read_text()))
    assert back == report
    html, md = report.render("html"), report.render("markdown")
    assert "Holm-adjusted" in html and "Holm-adjusted" in md
    assert "after temperature scaling" in html and "ms per sample" in md


def test_audit_without_held_out_data_says_how_to_enable_each_question():
    net = nn.Linear(4, 3)
    x, y = torch.randn(60, 4), torch.randint(0, 3, (60,))
    report = explain.audit(net, (x, y), samples=0, checks=["shallow-baseline",
                                                           "distribution-shift"])
    base = report.section(ShallowBaselineSection)
    shift = report.section(DistributionShiftSection)
    assert not base.available and base.reason.startswith("No training data was given")
    assert not shift.available and shift.reason.startswith("No reference data was given")
    assert not report.section(CalibrationSection).available
    assert report.section(CalibrationSection).reason == (
        "Not run: the audit's checks did not include 'calibration'.")
    assert {f.check: f.severity for f in report.findings} == {
        "shallow-baseline": Severity.SKIPPED, "distribution-shift": Severity.SKIPPED}
