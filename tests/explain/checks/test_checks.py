"""The check machinery: registry, diagnose (ordering, thresholds, errors), ERROR findings, JSON."""

from __future__ import annotations

import json
import math

import pytest

import explain
from explain.checks import (
    THRESHOLDS,
    Check,
    CheckContext,
    diagnose,
    get_check,
    list_checks,
)
from explain.checks.base import MissingInput, jsonable, loss_progress
from explain.errors import InvalidInputError, InvalidTypeError, UnknownNameError
from explain.findings import Finding, Severity
from explain.monitor import History

IDS = ["overfitting", "vanishing-gradients", "exploding-gradients", "non-finite", "dead-units",
       "saturation", "temporal-gradient-decay", "spectral", "data-sufficiency",
       "calibration", "distribution-shift", "robustness", "shallow-baseline", "unstable-training"]


def sick_history() -> History:
    """A history with something wrong for most checks: one FAIL, one WARN, INFOs, PASSes."""
    h = History()
    # overfitting: GL 17-50% while the training loss is flat (Prechelt's PQ infinite) -> WARN
    for i, v in enumerate([1.0, 0.8, 0.6, 0.7, 0.8, 0.9]):
        h.log_epoch(val_loss=v, train_loss=0.5 if i == 0 else 0.2, train_acc=1.0, val_acc=0.95)
    h.steps = list(range(0, 120, 10))
    h.step_loss = [2.3 - 0.1 * i for i in range(12)]
    h.layers = {"fc0": {"grad_norm": [1.0] * 12, "frac_dead": [0.6] * 12},  # dead: FAIL
                "fc1": {"grad_norm": [1.0] * 12}}
    h.layer_info = {"fc0": {"type": "Linear", "activation": "relu", "num_params": 10, "index": 0},
                    "fc1": {"type": "Linear", "activation": None, "num_params": 10, "index": 1}}
    return h


def test_every_check_is_registered_in_order():
    assert list_checks() == IDS
    assert explain.list_checks() == IDS
    assert all(isinstance(get_check(i), Check) and get_check(i).id == i for i in IDS)


def test_unknown_check_id_lists_the_closest():
    with pytest.raises(UnknownNameError, match="Unknown check 'overfit'. Did you mean "
                                               "'overfitting'"):
        get_check("overfit")
    with pytest.raises(UnknownNameError, match="Unknown check"):
        diagnose(History(), checks=["nope"])


def test_every_check_declares_documented_thresholds_and_every_threshold_is_used():
    used = set()
    for check_id in IDS:
        for name in get_check(check_id).thresholds:
            assert name in THRESHOLDS, (check_id, name)
            assert check_id in THRESHOLDS[name].checks
            used.add(name)
    assert used == set(THRESHOLDS)
    assert all(t.meaning and t.anchor for t in THRESHOLDS.values())


def test_diagnose_sorts_worst_first_then_by_registry_order():
    findings = diagnose(sick_history())
    ranks = [f.severity.rank for f in findings]
    assert ranks == sorted(ranks, reverse=True)
    assert [(f.check, f.severity) for f in findings[:2]] == [
        ("dead-units", Severity.FAIL), ("overfitting", Severity.WARN)]
    assert {f.check for f in findings} == set(IDS)
    passes = [f.check for f in findings if f.severity is Severity.PASS]
    assert passes == [i for i in IDS if i in passes]  # ties keep registry order


def test_diagnose_runs_a_subset_and_forwards_thresholds():
    findings = diagnose(sick_history(), checks=["dead-units"], dead_fail=0.7)
    assert [(f.check, f.severity) for f in findings] == [("dead-units", Severity.WARN)]
    assert findings[0].evidence["thresholds"] == {"dead_warn": 0.3, "dead_fail": 0.7,
                                                  "tail_fraction": 0.25,
                                                  "dead_fit_progress": 0.99}


def test_unknown_threshold_name_lists_valid_names():
    with pytest.raises(UnknownNameError, match="Unknown threshold 'dead_warning'. Did you mean "
                                               "'dead_warn'"):
        diagnose(History(), dead_warning=0.3)


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"dead_warn": 2.0}, InvalidInputError,
     "The 'dead_warn' parameter of diagnose must be a finite number > 0.0 and <= 1.0. Got 2.0 "
     "instead."),
    ({"vanishing_ratio": "small"}, InvalidTypeError, "The 'vanishing_ratio' parameter of "
                                                     "diagnose must be a finite number > 0.0"),
    ({"overfit_patience": 0}, InvalidInputError, "The 'overfit_patience' parameter of diagnose "
                                                 "must be an int >= 1. Got 0 instead."),
])
def test_threshold_values_are_validated(kwargs, error, message):
    with pytest.raises(error) as info:
        diagnose(History(), **kwargs)
    assert str(info.value).startswith(message)


def test_a_check_that_raises_becomes_an_error_finding():
    class Boom(Check):
        id = "boom"

        def compute(self, context):
            raise ZeroDivisionError("division by zero")

    f = Boom().run(CheckContext(history=History()))
    assert f.severity is Severity.ERROR
    assert f.summary == "The boom check could not run: ZeroDivisionError: division by zero"
    assert f.evidence == {"error": "ZeroDivisionError", "message": "division by zero",
                          "first_step": None, "first_epoch": None}


def test_a_broken_history_gives_error_findings_first_not_a_crash():
    class Broken:
        epochs = {"val_loss": "not a list of numbers"}

        @property
        def layers(self):
            raise RuntimeError("corrupt layers")

    findings = diagnose(Broken())
    errors = [f.check for f in findings if f.severity is Severity.ERROR]
    assert errors[:2] == ["vanishing-gradients", "exploding-gradients"]
    assert findings[0].severity is Severity.ERROR


def test_missing_inputs_give_skipped_never_pass():
    findings = diagnose(History())
    by_id = {f.check: f for f in findings}
    for check_id in IDS:
        if check_id == "non-finite":  # an empty history still has zero counts: a real PASS
            assert by_id[check_id].severity is Severity.PASS
            continue
        assert by_id[check_id].severity is Severity.SKIPPED, check_id
        assert by_id[check_id].remedy, check_id
    # skipped checks come after every finding that says something about the run
    ranks = [f.severity.rank for f in findings]
    assert ranks == sorted(ranks, reverse=True) and findings[-1].severity is Severity.SKIPPED
    with pytest.raises(MissingInput):
        get_check("spectral").compute(CheckContext())


def test_findings_are_strict_json_and_round_trip():
    h = sick_history()
    h.step_loss[3] = float("nan")
    h.layers["fc1"]["grad_norm"][2] = float("inf")
    nonfinite = []
    for f in diagnose(h, learning_curve=[(100, 0.5), (200, 0.6)]):
        text = json.dumps(f.to_dict(), allow_nan=False)
        back = Finding.from_dict(json.loads(text))
        # NaN != NaN, so compare the canonical text; the values come back, not as None
        assert json.dumps(back.to_dict(), allow_nan=False) == text
        nonfinite += [v["value"] for v in f.to_dict().get("nonfinite_values", [])]
    assert {"nan", "inf"} <= set(nonfinite)  # kept through the evidence, not turned to None


def test_jsonable_and_loss_progress_helpers():
    import numpy as np

    out = jsonable({"a": (np.float32(0.5), np.int64(3), math.inf, None, math.nan)})
    assert out["a"][:4] == [0.5, 3, math.inf, None] and math.isnan(out["a"][4])
    assert [type(v) for v in out["a"]] == [float, int, float, type(None), float]
    h = History()
    h.step_loss = [2.0] * 10 + [1.0] * 10
    assert loss_progress(h)["progress"] == pytest.approx(0.5)
    h.step_loss = []
    h.log_epoch(train_loss=2.0)
    h.log_epoch(train_loss=2.2)
    assert loss_progress(h)["progress"] == pytest.approx(-0.1)
