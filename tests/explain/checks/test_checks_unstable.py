"""unstable-training (both sides of every threshold, exact sentences), onsets and causal order."""

from __future__ import annotations

import math

import pytest
import torch

from explain.checks import causal_summary, diagnose, get_check
from explain.checks.base import CheckContext, epoch_of_step, first_step_of_epoch
from explain.findings import Severity
from explain.monitor import History


def loss_history(loss, ratios=None, meta=None) -> History:
    h = History()
    n = len(loss)
    h.steps = list(range(0, 10 * n, 10))
    h.step_loss = list(loss)
    h.layers = {"fc": {"update_ratio": list(ratios) if ratios else [None] * n}}
    h.layer_info = {"fc": {"type": "Linear", "activation": None, "num_params": 10, "index": 0}}
    h.meta.update(meta or {})
    return h


def run(history, model=None, **thresholds):
    return get_check("unstable-training").run(
        CheckContext(history=history, model=model, thresholds=thresholds))


CONVERGING = [2.3, 1.5, 1.0, 0.5, 0.2, 0.1, 0.05, 0.01, 0.005, 0.002, 0.001, 0.001]


def test_a_converging_run_is_stable_even_near_zero_loss():
    loss = list(CONVERGING)
    loss[-2] = 0.05  # a hard batch at 50x the recent loss: far below the start
    f = run(loss_history(loss, ratios=[2e-3] * 12))
    assert f.severity is Severity.PASS
    assert f.summary == ("Stable training: the loss peaked at 2.3, 1x its start (<= 4x), and "
                         "the update-to-weight ratio is 0.002 (median; <= 0.1).")
    assert f.evidence["first_step"] is None


@pytest.mark.parametrize(("peak", "severity"), [(9.19, Severity.PASS), (9.21, Severity.WARN)])
def test_loss_spike_factor_both_sides(peak, severity):
    loss = list(CONVERGING)
    loss[5] = peak  # 4 x 2.3 = 9.2
    assert run(loss_history(loss)).severity is severity


def test_a_loss_spike_between_samples_is_seen():
    h = loss_history(CONVERGING)
    h.between = {"loss_max": list(CONVERGING)}
    h.between["loss_max"][4] = 30.0
    f = run(h)
    assert f.severity is Severity.WARN
    assert f.summary == ("Unstable training: the loss spiked to 30, 13x its start 2.3 (> 4x) at 1 "
                         "records.")
    assert f.evidence["first_step"] == 40
    assert "Lower the learning rate by about 10x" in f.remedy and "warm-up" in f.remedy


def test_divergence_to_chance_level_fails_and_names_the_first_step():
    # the too-large learning rate: a 5x jump in the first epoch, then the loss sits at ln 10
    loss = [2.3, 11.5, 9.0, 6.0] + [2.3026] * 12
    h = loss_history(loss, ratios=[0.5] * 16, meta={"num_classes": 10, "total_steps": 160,
                                                    "epoch_end_steps": [40, 80, 120, 160]})
    h.epochs["epoch"] = [1, 2, 3, 4]
    for key in ("train_loss", "val_loss", "train_acc", "val_acc", "lr", "seconds"):
        h.epochs[key] = [None] * 4
    f = run(h)
    assert f.severity is Severity.WARN  # spikes and huge updates; the end is not 4x the start
    assert f.summary == ("Unstable training: the loss spiked to 11.5, 5x its start 2.3 (> 4x) at "
                         "1 records; the largest update-to-weight ratio per step is 0.5 (median; "
                         "> 0.1, ~0.001 is healthy).")
    assert (f.evidence["first_step"], f.evidence["first_epoch"]) == (10, 1)
    assert f.remedy.startswith("Lower the learning rate by about 500x (the update-to-weight "
                               "ratio 0.5 is that many times the ~1e-3 rule of thumb)")


def test_sustained_divergence_and_nonfinite_loss_fail():
    f = run(loss_history([1.0, 1.2, 2.0, 5.0, 8.0, 9.0, 9.5, 9.0]))
    assert f.severity is Severity.FAIL
    assert f.summary.startswith("Unstable training: the loss diverged: 9.25 over the last "
                                "quarter, 9.25x its start 1 (> 4x)")
    h = loss_history([1.0, 0.9, 0.8, 0.7, 0.6, math.nan])
    h.nonfinite["loss"] = 1
    assert run(h).severity is Severity.FAIL


def test_returning_to_chance_after_learning_warns():
    loss = [2.3, 1.5, 1.0, 0.8, 0.9, 1.5, 2.2, 2.31, 2.31, 2.31, 2.31, 2.31]
    f = run(loss_history(loss), model=torch.nn.Sequential(torch.nn.Linear(4, 10)))
    assert f.severity is Severity.WARN
    assert f.summary == ("Unstable training: it fell to 0.8 and returned to chance level ln 10 = "
                         "2.3 (2.31 at the end).")
    assert f.evidence["first_step"] == 70


@pytest.mark.parametrize(("ratio", "severity"), [(0.099, Severity.PASS), (0.101, Severity.WARN)])
def test_update_ratio_threshold_both_sides(ratio, severity):
    assert run(loss_history(CONVERGING, ratios=[ratio] * 12)).severity is severity


def test_unstable_training_needs_a_start_and_a_later_loss():
    f = run(loss_history([1.0]))
    assert f.severity is Severity.SKIPPED
    assert f.summary == ("The unstable-training check needs the loss at 2 or more sampled steps "
                         "(or epochs): its start and a later one; the history has 1.")


def test_a_short_run_that_jumped_between_its_few_records_is_judged():
    # 3 epochs, 4 records (as cnn-speech at SGD lr=3): the loss jumped ~1000x inside the first
    # epoch, between records, then sat at chance; the monitor's running maximum saw the jump
    h = loss_history([2.36, 2.33, 2.32, 2.31])
    h.between = {"loss_max": [2.36, 2456.0, 2.41, 2.32]}
    f = run(h)
    assert f.severity is Severity.WARN
    assert f.summary == ("Unstable training: the loss spiked to 2.46e+03, 1.04e+03x its start "
                         "2.36 (> 4x) at 1 records.")
    assert f.evidence["first_step"] == 10
    calm = loss_history([2.36, 2.33, 2.32, 2.31])
    calm.between = {"loss_max": [2.36, 9.43, 2.41, 2.32]}  # 4 x 2.36 = 9.44
    assert run(calm).severity is Severity.PASS


def test_step_and_epoch_mapping():
    h = History()
    for _ in range(3):
        h.log_epoch(train_loss=1.0)
    h.meta["epoch_end_steps"] = [10, 25, 40]
    assert [epoch_of_step(h, s) for s in (0, 9, 10, 39, 40)] == [1, 1, 2, 3, None]
    assert [first_step_of_epoch(h, e) for e in (1, 2, 3, 4)] == [0, 10, 25, None]
    del h.meta["epoch_end_steps"]
    h.meta["total_steps"] = 30  # equal epochs assumed
    assert epoch_of_step(h, 19) == 2 and first_step_of_epoch(h, 3) == 20


def test_diagnose_says_the_divergence_came_before_the_dead_units():
    # Arrange: the loss jumps at step 10; the ReLU layer is dead from step 40 on
    loss = [2.3, 11.5] + [2.3026] * 10
    h = loss_history(loss, meta={"total_steps": 120, "epoch_end_steps": [60, 120]})
    h.layers["fc"]["frac_dead"] = [0.0] * 4 + [0.97] * 8
    h.layer_info["fc"]["activation"] = "relu"
    for _ in range(2):
        h.log_epoch(train_loss=2.3)
    # Act
    findings = diagnose(h, checks=["dead-units", "unstable-training"])
    # Assert
    dead = next(f for f in findings if f.check == "dead-units")
    assert (dead.evidence["first_step"], dead.evidence["first_epoch"]) == (40, 1)
    assert causal_summary(findings) == (
        "unstable-training came first, at step 10 (epoch 1); then dead-units at step 40 (epoch "
        "1): the first is the likely cause of what follows.")


def test_ties_in_severity_are_ordered_by_time():
    loss = [2.3, 11.5] + [2.3026] * 10
    h = loss_history(loss, ratios=[0.5] * 12)
    h.layers["fc"]["frac_dead"] = [0.0] * 4 + [0.4] * 8  # WARN from step 40
    h.layer_info["fc"]["activation"] = "relu"
    found = [f.check for f in diagnose(h, checks=["dead-units", "unstable-training"])]
    assert found == ["unstable-training", "dead-units"]  # both WARN; the earlier first


def test_a_loss_spike_after_the_last_record_is_seen():
    h = loss_history(CONVERGING)
    h.between = {"loss_max": list(CONVERGING)}
    h.meta["between_tail"] = {"step": 125, "count": 5, "loss_max": 30.0}
    f = run(h)
    assert f.severity is Severity.WARN
    assert f.summary == ("Unstable training: the loss spiked to 30, 13x its start 2.3 (> 4x) at 1 "
                         "records.")
    assert f.evidence["first_step"] == 125
    h.meta["between_tail"]["loss_max"] = 9.1  # under 4 x 2.3
    assert run(h).severity is Severity.PASS
