"""Checks on units, time, weights and data: dead-units, saturation, temporal-gradient-decay,
spectral, data-sufficiency (exact sentences, severities on both sides of each threshold)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explain.checks import get_check, learning_curve
from explain.checks.base import CheckContext
from explain.checks.spectral import powerlaw_alpha
from explain.errors import InvalidInputError, InvalidTypeError
from explain.findings import Severity
from explain.monitor import History


def run(check_id: str, history=None, model=None, curve=None, **thresholds):
    ctx = CheckContext(history=history, model=model, thresholds=thresholds, learning_curve=curve)
    return get_check(check_id).run(ctx)


def units_history(metric: str, layers: dict[str, tuple[str | None, list]]) -> History:
    """``layers``: name -> (activation, series of ``metric``)."""
    h = History()
    n = len(next(iter(layers.values()))[1])
    h.steps = list(range(n))
    for i, (name, (act, series)) in enumerate(layers.items()):
        h.layers[name] = {metric: list(series), "grad_norm": [1.0] * n}
        h.layer_info[name] = {"type": "Linear", "activation": act, "num_params": 10, "index": i}
    return h


# -- dead units ---------------------------------------------------------------------------------
def dead(frac: float, early: float = 0.0) -> History:
    # 8 sampled steps: the first 6 at `early`, the last quarter (2 steps) at `frac`
    return units_history("frac_dead", {
        "fc0": ("relu", [early] * 6 + [frac] * 2), "fc1": ("relu", [0.05] * 8),
        "out": (None, [None] * 8)})


@pytest.mark.parametrize(("frac", "severity"), [
    (0.3, Severity.PASS), (0.31, Severity.WARN), (0.5, Severity.WARN), (0.51, Severity.FAIL)])
def test_dead_units_thresholds_both_sides(frac, severity):
    assert run("dead-units", dead(frac)).severity is severity


def test_dead_units_sentences():
    f = run("dead-units", dead(0.75))
    assert f.summary == ("Dying ReLU: 75% of the units of fc0 are dead (> 50%); 1 of 2 ReLU "
                         "layers are above 30%.")
    assert "He init" in f.remedy and "lower learning rate" in f.remedy
    assert f.evidence["layers"] == ["fc0", "fc1"] and f.evidence["frac_dead"] == [0.75, 0.05]
    assert run("dead-units", dead(0.1)).summary == (
        "No dying ReLU: at most 10% of a layer's units are dead (fc0), at or below 30%.")


@pytest.mark.parametrize(("end", "severity"), [
    (0.0231, Severity.INFO),   # the loss fell 99% (2.31 -> 0.0231): the live units fit the data
    (0.0254, Severity.FAIL),   # fell 98.9%: below dead_fit_progress 0.99
])
def test_dead_units_with_a_near_perfect_fit_are_spare_capacity(end, severity):
    h = dead(0.75)
    h.step_loss = [2.31] * 4 + [end] * 4
    f = run("dead-units", h)
    assert f.severity is severity
    if severity is Severity.INFO:
        assert f.summary == ("Spare capacity, not dying ReLU: 75% of the units of fc0 are dead "
                             "(> 50%); 1 of 2 ReLU layers are above 30%, but the loss fell 99% "
                             "(2.31 -> 0.0231, >= 99%): the live units fit the training data.")


def test_dead_units_judges_the_end_of_training():
    assert run("dead-units", dead(0.0, early=0.9)).severity is Severity.PASS
    assert run("dead-units", dead(0.9, early=0.0)).severity is Severity.FAIL
    assert run("dead-units", dead(0.9, early=0.0), tail_fraction=1.0).severity is Severity.PASS


def test_dead_units_counts_only_units_silent_in_every_sampled_batch():
    # a selective layer that is silent in one small batch but fires in the next is not dead
    flicker = units_history("frac_dead", {"fc0": ("relu", [0.1] * 4 + [0.7, 0.1, 0.7, 0.1]),
                                          "out": (None, [None] * 8)})
    f = run("dead-units", flicker, tail_fraction=0.5)
    assert f.severity is Severity.PASS and f.evidence["frac_dead"] == [0.1]


def test_dead_units_does_not_apply_without_relu():
    f = run("dead-units", units_history("frac_dead", {"fc0": ("tanh", [None] * 4)}))
    assert f.severity is Severity.SKIPPED
    assert f.summary == ("No layer with a ReLU activation was recorded, so the dead-units check "
                         "does not apply.")


def test_dead_units_with_relu_but_no_values_is_skipped():
    f = run("dead-units", units_history("act_mean", {"fc0": ("relu", [0.1] * 4)}))
    assert f.severity is Severity.SKIPPED
    assert f.summary == ("The dead-units check found 1 ReLU layers but no 'frac_dead' values for "
                         "them.")


# -- saturation ---------------------------------------------------------------------------------
def saturated(frac: float) -> History:
    return units_history("frac_saturated", {"h0": ("sigmoid", [frac] * 4),
                                            "h1": ("tanh", [0.1] * 4), "out": (None, [None] * 4)})


@pytest.mark.parametrize(("frac", "severity"), [
    (0.3, Severity.PASS), (0.31, Severity.WARN), (0.6, Severity.WARN), (0.61, Severity.FAIL)])
def test_saturation_thresholds_both_sides(frac, severity):
    assert run("saturation", saturated(frac)).severity is severity


def test_saturation_sentences():
    f = run("saturation", saturated(0.9))
    assert f.summary == ("Saturated units: 90% of the units of h0 are saturated (> 60%); 1 of 2 "
                         "sigmoid/tanh layers are above 30%.")
    assert "ReLU" in f.remedy and "Xavier" in f.remedy
    assert run("saturation", saturated(0.2)).summary == (
        "No saturation: at most 20% of a layer's units are saturated (h0), at or below 30%.")
    assert run("saturation", dead(0.1)).severity is Severity.SKIPPED


# -- temporal gradient decay --------------------------------------------------------------------
def temporal(ratio: float, loss=(2.3, 2.3, 2.3, 2.3), pad: int = 0) -> History:
    h = History()
    h.step_loss = list(loss)
    curve = list(np.geomspace(ratio, 1.0, 10)) + [0.0] * pad  # first step ... last step
    h.temporal = [{"step": s, "grad_norm": curve} for s in (0, 100, 200)]
    return h


LEARNING = (2.3, 1.5, 1.0, 0.5)


@pytest.mark.parametrize(("ratio", "severity"), [
    (1e-3, Severity.PASS), (9e-4, Severity.WARN), (70.0, Severity.PASS), (71.0, Severity.WARN)])
def test_temporal_thresholds_both_sides(ratio, severity):
    assert run("temporal-gradient-decay", temporal(ratio, LEARNING)).severity is severity


def test_temporal_decay_with_stalled_loss_fails_and_ignores_padding():
    f = run("temporal-gradient-decay", temporal(1e-5, pad=5))
    assert f.severity is Severity.FAIL
    assert f.summary == ("Gradients vanish through time: the gradient reaching the first time "
                         "step is 1e-05 times the one at the last (median over 3 sampled steps, "
                         "15 time steps), below 0.001, and the loss fell 0%.")
    assert "LSTM/GRU" in f.remedy and "gradient clipping" in f.remedy
    assert len(f.evidence["curves"]) == 3


def test_temporal_decay_in_a_run_that_fitted_its_task_is_info_on_both_sides_of_90_percent():
    fitted = run("temporal-gradient-decay", temporal(1e-5, (2.3, 1.0, 0.5, 0.23)))
    unfitted = run("temporal-gradient-decay", temporal(1e-5, (2.3, 1.0, 0.5, 0.24)))
    assert (fitted.severity, unfitted.severity) == (Severity.INFO, Severity.WARN)
    assert fitted.summary == ("Gradients vanish through time (the gradient reaching the first "
                              "time step is 1e-05 times the one at the last (median over 3 "
                              "sampled steps, 10 time steps), outside [0.001, 70]), but the "
                              "loss fell 90%: the run learned its task through it.")
    exploded = run("temporal-gradient-decay", temporal(100.0, (2.3, 1.0, 0.5, 0.01)))
    assert exploded.severity is Severity.INFO and exploded.summary.startswith(
        "Gradients explode through time")


def test_temporal_pass_sentence_and_missing_input():
    f = run("temporal-gradient-decay", temporal(0.2, LEARNING))
    assert f.summary == ("No temporal gradient decay: the gradient reaching the first time step "
                         "is 0.2 times the one at the last (median over 3 sampled steps, 10 time "
                         "steps), within [0.001, 70].")
    missing = run("temporal-gradient-decay", History())
    assert missing.severity is Severity.SKIPPED and "history.temporal is empty" in missing.summary


# -- spectral -----------------------------------------------------------------------------------
def spectral_model(*tails: float, size: int = 100) -> torch.nn.Module:
    """Square layers whose eigenvalues (squared singular values) follow given Pareto tails."""
    rng = np.random.default_rng(1)
    layers = []
    for exponent in tails:  # density exponent alpha = 1 + exponent
        evals = (1 - rng.random(size)) ** (-1 / exponent)
        u, _ = np.linalg.qr(rng.normal(size=(size, size)))
        v, _ = np.linalg.qr(rng.normal(size=(size, size)))
        layer = torch.nn.Linear(size, size)
        layer.weight.data = torch.tensor(u @ np.diag(np.sqrt(evals)) @ v.T, dtype=torch.float32)
        layers.append(layer)
    return torch.nn.Sequential(*layers)


def test_powerlaw_alpha_recovers_known_exponents():
    rng = np.random.default_rng(0)
    for alpha in (1.8, 3.0, 5.0):
        x = (1 - rng.random(3000)) ** (-1 / (alpha - 1))
        assert powerlaw_alpha(x)["alpha"] == pytest.approx(alpha, rel=0.1)
    assert powerlaw_alpha(np.array([1.0, 2.0])) is None


def test_spectral_flags_over_trained_layers():
    f = run("spectral", model=spectral_model(0.6, 2.0))
    assert f.severity is Severity.WARN
    assert f.summary == ("1 of 2 layers have a very heavy-tailed spectrum (alpha < 2; lowest "
                         "0.weight at 1.6 from a tail of 99 eigenvalues, mean 2.45): "
                         "over-trained.")
    assert f.evidence["layers"] == ["0.weight", "1.weight"]
    assert f.evidence["n_tail"][0] == 99
    assert f.evidence["alpha_se"][0] == pytest.approx((1.6 - 1) / 99 ** 0.5, abs=0.01)
    assert len(f.evidence["esd"]["0.weight"]) == 100


def test_spectral_low_alpha_from_a_short_tail_is_only_info():
    small = spectral_model(0.6, size=30)  # 30 eigenvalues: below spectral_min_tail = 50
    f = run("spectral", model=small)
    assert f.severity is Severity.INFO
    alpha = f.evidence["alpha"][0]
    assert alpha < 2 and f.evidence["n_tail"][0] < 50
    assert f.summary == ("1 of 1 layers have alpha < 2 (lowest 0.weight at 1.56 from a tail of "
                         "30 eigenvalues, mean 1.56), but no fit has the 50+ eigenvalues and the "
                         "margin a verdict needs: possibly over-trained.")
    assert run("spectral", model=small, spectral_min_tail=20).severity is Severity.WARN
    # a long tail but alpha within 1.645 standard errors of 2: no verdict either
    near = run("spectral", model=spectral_model(0.6), alpha_low=1.65)
    assert near.evidence["alpha"][0] < 1.65 < near.evidence["alpha"][0] + \
        1.645 * near.evidence["alpha_se"][0]
    assert near.severity is Severity.INFO


def test_spectral_pass_and_barely_trained():
    f = run("spectral", model=spectral_model(2.0, 2.0))
    assert f.severity is Severity.PASS
    assert f.summary == ("All 2 layers have alpha >= 2 (mean 3.15); 2 of 2 lie in the "
                         "well-trained range [2, 6].")
    f = run("spectral", model=spectral_model(7.0, 7.0))
    assert f.severity is Severity.INFO and "barely trained" in f.summary
    assert run("spectral", model=spectral_model(0.6, 2.0), alpha_low=1.5).severity \
        is Severity.PASS


def test_spectral_needs_the_model_and_big_enough_layers():
    f = run("spectral")
    assert f.severity is Severity.SKIPPED
    assert f.summary == "The spectral check needs the trained model; none was given."
    tiny = run("spectral", model=torch.nn.Linear(4, 3))
    assert tiny.severity is Severity.SKIPPED and ">= 10 eigenvalues" in tiny.summary


# -- data sufficiency ---------------------------------------------------------------------------
def test_data_sufficiency_rising_curve_warns():
    f = run("data-sufficiency", curve=[(100, 0.70), (200, 0.75), (400, 0.80)])
    assert f.severity is Severity.WARN
    assert f.summary == ("More data would help: the validation score rose 0.05 per doubling of "
                         "the training set up to 400 samples (score 0.8), above 0.02.")
    assert "more data" in f.remedy and "data augmentation" in f.remedy
    assert f.evidence["predicted_next"] == pytest.approx(0.85)


@pytest.mark.parametrize(("last", "severity"), [(0.819, Severity.PASS), (0.821, Severity.WARN)])
def test_data_sufficiency_threshold_both_sides(last, severity):
    assert run("data-sufficiency", curve=[(200, 0.8), (400, last)]).severity is severity


def test_data_sufficiency_flat_curve_and_missing_curve():
    f = run("data-sufficiency", curve=[(400, 0.81), (100, 0.8), (200, 0.805)])
    assert f.summary == ("The learning curve has flattened: the validation score changed 0.005 "
                         "per doubling of the training set up to 400 samples (score 0.81), at or "
                         "below 0.02.")
    missing = run("data-sufficiency")
    assert missing.severity is Severity.SKIPPED and "learning_curve(" in missing.remedy
    assert run("data-sufficiency", curve=[(100, 0.8)]).severity is Severity.SKIPPED


def test_learning_curve_helper_calls_each_fraction():
    seen = []
    curve = learning_curve(lambda f: seen.append(f) or f / 2, fractions=(0.25, 0.5, 1.0),
                           n_total=1000)
    assert seen == [0.25, 0.5, 1.0]
    assert curve == [(250, 0.125), (500, 0.25), (1000, 0.5)]


def test_learning_curve_helper_validates():
    with pytest.raises(InvalidInputError, match="strictly increasing"):
        learning_curve(lambda f: 1.0, fractions=(0.5, 0.25), n_total=10)
    with pytest.raises(InvalidInputError, match="'fractions' parameter of learning_curve"):
        learning_curve(lambda f: 1.0, fractions=(0.0, 1.0), n_total=10)
    with pytest.raises(InvalidTypeError, match="'fit_and_score' parameter"):
        learning_curve(3, n_total=10)
    with pytest.raises(InvalidInputError, match="score returned by fit_and_score"):
        learning_curve(lambda f: float("nan"), n_total=10)


def init_bulk_and_learned_directions() -> torch.nn.Module:
    """A 256 x 64 input layer as trained MLPs have it: the random bulk of its initialisation
    (uniform +-1/8) plus 24 learned directions of power-law strength (84 down to ~1.85)."""
    rng = np.random.default_rng(5)
    w0 = rng.uniform(-1 / 8, 1 / 8, size=(256, 64))
    u, _ = np.linalg.qr(rng.normal(size=(256, 24)))
    v, _ = np.linalg.qr(rng.normal(size=(64, 24)))
    w = w0 + u @ np.diag(np.sqrt(84.0 * np.arange(1, 25) ** -1.2)) @ v.T
    layer = torch.nn.Linear(64, 256)
    layer.weight.data = torch.tensor(w, dtype=torch.float32)
    return torch.nn.Sequential(layer)


def test_spectral_a_low_alpha_the_bootstrap_doubts_is_only_info():
    # the formula's margin holds (1.77 + 1.645 x 0.105 < 2 from a 54-eigenvalue tail), but the
    # tail reaches into the init's random bulk and refitting xmin moves alpha across 2
    f = run("spectral", model=init_bulk_and_learned_directions())
    alpha, se = f.evidence["alpha"][0], f.evidence["alpha_se"][0]
    assert f.evidence["n_tail"] == [54] and alpha + 1.645 * se < 2
    assert f.evidence["alpha_boot_share"][0] == pytest.approx(0.22, abs=0.005)
    assert f.severity is Severity.INFO
    assert f.summary == ("1 of 1 layers have alpha < 2 (lowest with a 50+ tail: 0.weight at 1.77 "
                         "from 54 eigenvalues, mean 1.77), but 22% of bootstrap resamples fit "
                         "alpha >= 2 (a verdict needs < 5%): possibly over-trained.")


def test_spectral_a_low_alpha_the_bootstrap_confirms_warns():
    f = run("spectral", model=spectral_model(0.6))  # the whole spectrum one power law
    assert f.evidence["alpha_boot_share"][0] < 0.05
    assert f.severity is Severity.WARN
    assert f.summary == ("1 of 1 layers have a very heavy-tailed spectrum (alpha < 2; lowest "
                         "0.weight at 1.6 from a tail of 99 eigenvalues, mean 1.6): over-trained.")
