"""Checks on the training dynamics: overfitting, vanishing/exploding gradients, non-finite.

Synthetic histories pin the exact sentence and the severity on each side of every threshold.
"""

from __future__ import annotations

import pytest

from explain.checks import diagnose, get_check
from explain.checks.base import CheckContext
from explain.checks.overfitting import generalization_loss
from explain.findings import Severity
from explain.monitor import History


def epochs_history(val_loss, train_acc=None, val_acc=None, train_loss=None) -> History:
    h = History()
    for i, v in enumerate(val_loss):
        h.log_epoch(val_loss=v, train_loss=None if train_loss is None else train_loss[i],
                    train_acc=None if train_acc is None else train_acc[i],
                    val_acc=None if val_acc is None else val_acc[i])
    return h


def layers_history(grads: dict[str, list], loss: list | None = None,
                   types: dict[str, str] | None = None) -> History:
    h = History()
    n = len(next(iter(grads.values())))
    h.steps = list(range(0, 10 * n, 10))
    h.step_loss = list(loss) if loss is not None else [None] * n
    for i, (name, g) in enumerate(grads.items()):
        h.layers[name] = {"grad_norm": list(g)}
        h.layer_info[name] = {"type": (types or {}).get(name, "Linear"), "activation": None,
                              "num_params": 100, "index": i}
    return h


def run(check_id: str, history, **thresholds):
    return get_check(check_id).run(CheckContext(history=history, thresholds=thresholds))


# -- overfitting --------------------------------------------------------------------------------
RISING = [1.0, 0.8, 0.6, 0.6, 0.6, 0.7, 0.8, 0.9]  # min 0.6 at epoch 3; GL 16.7, 33, 50 in 6-8
# the training loss flattens: Prechelt's P_5 at epoch 8 is 1000 (0.198 / 0.196 - 1) = 10.2,
# so PQ = 50 / 10.2 = 4.9 there (0.033 and 0.30 at epochs 6 and 7)
FALLING = [1.0, 0.6, 0.3, 0.2, 0.199, 0.198, 0.197, 0.196]
FAST = [1.0, 0.6, 0.3, 0.2, 0.1, 0.05, 0.025, 0.0125]  # still halving: PQ <= 0.0096


def overfit(val_acc: float, val_loss=RISING, train_loss=FALLING) -> History:
    n = len(val_loss)
    return epochs_history(val_loss, train_acc=[1.0] * n, val_acc=[val_acc] * n,
                          train_loss=list(train_loss)[:n])


def test_generalization_loss_is_prechelts():
    assert generalization_loss([1.0, 0.8, 1.0, None, 0.4]) == [0.0, 0.0, pytest.approx(25.0),
                                                              None, 0.0]


def test_overfitting_fails_with_sustained_gl_falling_train_loss_and_large_gap():
    f = run("overfitting", overfit(0.75))
    assert f.severity is Severity.FAIL
    assert f.summary == ("Overfitting: the generalization loss GL exceeded 5 for 3 or more epochs "
                         "from epoch 6 (up to 50: validation loss 50% above its minimum at epoch "
                         "3) while the training loss did not rise (0.3 -> 0.196; progress "
                         "quotient PQ = GL / P_5 4.9 > 1 at epoch 8), and the relative "
                         "train/val accuracy gap is 0.25 (> 0.1); stop at epoch 3.")
    assert "early stopping at epoch 3" in f.remedy
    assert f.evidence["best_epoch"] == 3 and f.evidence["rise_epoch"] == 6
    assert f.evidence["first_epoch"] == 6 and f.evidence["val_loss"] == RISING
    assert f.evidence["pq_epoch"] == 8 and f.evidence["rise_by"] == "pq"
    assert f.evidence["progress_quotient"][5:] == pytest.approx([0.0325, 0.301, 4.9], rel=1e-2)


@pytest.mark.parametrize(("val_acc", "severity"), [
    (0.89, Severity.FAIL),   # gap 0.11 > overfit_gap 0.1
    (0.91, Severity.WARN),   # gap 0.09: overfitting all the same, without the accuracy gap
])
def test_overfitting_gap_threshold_both_sides(val_acc, severity):
    assert run("overfitting", overfit(val_acc)).severity is severity


def test_overfitting_without_an_accuracy_gap_warns():
    f = run("overfitting", overfit(0.95))  # the few-samples regime: gap < 0.1, val loss rising
    assert f.severity is Severity.WARN
    assert f.summary.endswith("while the training loss did not rise (0.3 -> 0.196; progress "
                              "quotient PQ = GL / P_5 4.9 > 1 at epoch 8); the relative "
                              "train/val accuracy gap is 0.05 (<= 0.1); stop at epoch 3.")


@pytest.mark.parametrize(("overfit_pq", "severity"), [
    (4.8, Severity.WARN),   # PQ 4.9 at epoch 8 is above it
    (5.0, Severity.INFO),   # not above: the training loss still progresses enough
])
def test_overfitting_pq_threshold_both_sides(overfit_pq, severity):
    f = run("overfitting", overfit(0.95), overfit_pq=overfit_pq)
    assert f.severity is severity


def test_a_rise_while_training_still_progresses_fast_is_not_overfitting_yet():
    f = run("overfitting", overfit(0.95, train_loss=FAST))  # Prechelt's PQ <= 0.0096
    assert f.severity is Severity.INFO
    assert f.summary == ("The validation loss rose (the generalization loss GL exceeded 5 for 3 "
                         "or more epochs from epoch 6 (up to 50: validation loss 50% above its "
                         "minimum at epoch 3)), but the training loss was still falling fast: "
                         "the progress quotient PQ = GL / P_5 stayed at or below 1 (at most "
                         "0.00962), so the rise may still be repaired; not overfitting yet (the "
                         "relative train/val accuracy gap is 0.05).")
    assert f.evidence["rise_epoch"] is None and f.evidence["gl_rise_epoch"] == 6


def test_a_fast_progressing_rise_with_an_accuracy_gap_is_overfitting():
    f = run("overfitting", overfit(0.75, train_loss=FAST))
    assert f.severity is Severity.FAIL and f.evidence["rise_by"] == "gap"
    assert f.summary == ("Overfitting: the generalization loss GL exceeded 5 for 3 or more epochs "
                         "from epoch 6 (up to 50: validation loss 50% above its minimum at epoch "
                         "3) while the training loss did not rise (0.3 -> 0.0125; PQ at most "
                         "0.00962, but the accuracy gap shows the progress does not carry over "
                         "to validation), and the relative train/val accuracy gap is 0.25 "
                         "(> 0.1); stop at epoch 3.")


def test_training_progress_is_prechelts_strip():
    from explain.checks.overfitting import training_progress
    assert training_progress(FALLING, 5)[7] == pytest.approx(1000 * (0.198 / 0.196 - 1))
    assert training_progress([None, 2.0, None], 5) == [None, None, None]


@pytest.mark.parametrize(("gl_epochs", "severity"), [(2, Severity.INFO), (3, Severity.FAIL)])
def test_overfitting_patience_both_sides(gl_epochs, severity):
    val = [1.0, 0.8, 0.6] + [0.7] * gl_epochs + [0.6]  # GL 16.7 in gl_epochs epochs, then back
    f = run("overfitting", overfit(0.75, val, train_loss=FALLING + [0.04]))
    assert f.severity is severity  # 2 epochs: only the accuracy gap remains (INFO)


# the wild suite's rnn-rmsprop-clip at one thread (an RNN at ~20% accuracy, 9 classes): the
# validation loss scatters; one low epoch (15) puts GL above 5 for epochs 19-22, then it comes back
SCATTER_VAL = [1.937, 1.875, 1.796, 1.831, 1.789, 1.977, 1.671, 1.731, 1.727, 1.707, 1.694, 1.69,
               1.7, 1.691, 1.663, 1.673, 1.704, 1.693, 1.801, 1.814, 1.774, 1.774, 1.674, 1.782,
               1.674]
SCATTER_TRAIN = [2.21, 1.904, 1.88, 1.879, 1.871, 1.818, 1.894, 1.796, 1.8, 1.753, 1.743, 1.741,
                 1.736, 1.737, 1.737, 1.723, 1.712, 1.72, 1.711, 1.726, 1.719, 1.716, 1.716,
                 1.739, 1.707]


@pytest.mark.parametrize(("end", "severity"), [(25, Severity.INFO), (22, Severity.WARN)])
def test_a_rise_the_run_repaired_is_not_overfitting(end, severity):
    n = len(SCATTER_VAL)
    h = epochs_history(SCATTER_VAL[:end], train_acc=[0.2] * n, val_acc=[0.22] * n,
                       train_loss=SCATTER_TRAIN[:end])
    f = run("overfitting", h)
    assert f.severity is severity   # stopped at epoch 22 the rise still stands: overfitting
    assert f.evidence["rise_epoch"] == 19 and f.evidence["repaired"] is (end == 25)
    if end == 25:   # last 3 epochs' GL: 0.66, 7.2, 0.66
        assert f.evidence["final_gl"] == pytest.approx(100 * (1.674 / 1.663 - 1))
        assert "came back" in f.summary and "not overfitting" in f.summary

def test_overfitting_gl_threshold_both_sides():
    small_rise = [1.0, 0.8, 0.6, 0.6, 0.6, 0.6299, 0.6299, 0.6299]  # GL 4.98 (not above 5)
    assert run("overfitting", overfit(0.95, small_rise)).severity is Severity.PASS
    above = [1.0, 0.8, 0.6, 0.6, 0.6, 0.6031, 0.6031, 0.6031]  # GL 0.52, PQ 0.051 at epoch 8
    assert run("overfitting", overfit(0.95, above), overfit_gl=0.5,
               overfit_pq=0.01).severity is Severity.WARN


def test_accuracy_gap_without_a_val_loss_rise_is_an_info_generalization_gap():
    f = run("overfitting", overfit(0.75, [1.0, 0.8, 0.6, 0.5, 0.45, 0.44]))
    assert f.severity is Severity.INFO
    assert f.summary == ("Generalization gap: the relative train/val accuracy gap is 0.25 (> 0.1), "
                         "but the validation loss has not risen (GL above 5 for at most 0 "
                         "consecutive epochs, fewer than 3); not overfitting.")
    assert "More training data" in f.remedy and f.evidence["first_epoch"] == 1


def test_a_val_loss_rise_with_a_rising_train_loss_is_not_overfitting():
    f = run("overfitting", overfit(0.75, train_loss=[1.0, 0.6, 0.3, 0.5, 0.7, 0.9, 1.1, 1.3]))
    assert f.severity is Severity.INFO
    assert f.summary.endswith("but the training loss did not fall meanwhile, so this is not "
                              "overfitting; see unstable-training.")


def test_overfitting_passes_on_a_healthy_run():
    f = run("overfitting", overfit(0.95, [1.0, 0.8, 0.6, 0.5, 0.45, 0.44]))
    assert f.severity is Severity.PASS
    assert f.summary == ("No overfitting: the generalization loss GL exceeded 5 for at most 0 "
                         "consecutive epochs (fewer than 3; lowest validation loss at epoch 6), "
                         "and the relative train/val accuracy gap is 0.05.")
    assert f.evidence["first_step"] is None and f.evidence["first_epoch"] is None


def test_overfitting_uses_the_loss_gap_without_accuracy():
    h = epochs_history(RISING, train_loss=[0.5, 0.3, 0.2, 0.1, 0.05, 0.05, 0.05, 0.05])
    f = run("overfitting", h)
    assert f.evidence["gap_kind"] == "loss"
    assert f.evidence["gap"] == pytest.approx((0.8 - 0.05) / 0.8)
    assert f.severity is Severity.FAIL


def test_overfitting_without_validation_loss_is_skipped_not_pass():
    f = run("overfitting", epochs_history([None, None, None]))
    assert f.severity is Severity.SKIPPED
    assert f.summary == ("The overfitting check needs a validation loss for at least 2 epochs; "
                         "0 were logged.")
    assert "log_epoch" in f.remedy


# -- vanishing gradients ------------------------------------------------------------------------
STALLED = [2.30] * 10
LEARNING = [2.3, 2.0, 1.7, 1.4, 1.2, 1.0, 0.9, 0.8, 0.7, 0.6]


def vanishing(g_first: float, g_last: float = 1e-2, loss=STALLED, **kw) -> History:
    return layers_history({"fc0": [g_first] * 10, "fc1": [1e-3] * 10, "fc2": [g_last] * 10},
                          loss, **kw)


def test_vanishing_fails_when_the_loss_does_not_move():
    f = run("vanishing-gradients", vanishing(1e-9))
    assert f.severity is Severity.FAIL
    assert f.summary == ("Gradients vanish: the first layer's gradient norm (fc0, median 1e-09) "
                         "is 1e-07 times the last layer's (fc2, 0.01), below 0.001, and the loss "
                         "fell 0% (< 10%).")
    assert "ReLU" in f.remedy and "He init" in f.remedy
    assert f.evidence["layers"] == ["fc0", "fc1", "fc2"]
    assert f.evidence["median_grad_norm"] == [1e-9, 1e-3, 1e-2]


def test_vanishing_with_a_learning_loss_is_only_a_warning():
    f = run("vanishing-gradients", vanishing(1e-9, loss=LEARNING))
    assert f.severity is Severity.WARN
    assert f.summary.endswith("below 0.001, while the loss fell 74%.")


def test_vanishing_ratio_without_tiny_norm_is_info():
    f = run("vanishing-gradients", vanishing(2e-4, g_last=1.0))
    assert f.severity is Severity.INFO
    assert f.summary == ("Early layers learn slowly: the first layer's gradient norm (fc0, median "
                         "0.0002) is 0.0002 times the last layer's (fc2, 1), below 0.001, but the "
                         "first-layer norm is not tiny (>= 0.0001).")


@pytest.mark.parametrize(("ratio", "severity"), [(2e-2, Severity.PASS), (1e-3, Severity.PASS),
                                                 (9e-4, Severity.FAIL)])
def test_vanishing_ratio_threshold_both_sides(ratio, severity):
    assert run("vanishing-gradients", vanishing(ratio * 0.05, g_last=0.05)).severity is severity


def test_relu_like_ratio_passes_with_the_exact_sentence():
    f = run("vanishing-gradients", vanishing(2e-4, g_last=1e-2, loss=LEARNING))
    assert f.severity is Severity.PASS
    assert f.summary == ("No vanishing gradients: the first layer's gradient norm (fc0, median "
                         "0.0002) is 0.02 times the last layer's (fc2, 0.01) (>= 0.001).")


def test_vanishing_ignores_embedding_layers():
    h = layers_history({"emb": [1e-9] * 10, "fc0": [1e-2] * 10, "fc1": [1e-2] * 10}, STALLED,
                       types={"emb": "Embedding"})
    f = run("vanishing-gradients", h)
    assert f.severity is Severity.PASS and f.evidence["first_layer"] == "fc0"


def test_vanishing_threshold_override():
    assert run("vanishing-gradients", vanishing(1e-9), vanishing_ratio=1e-8).severity \
        is Severity.PASS


def test_vanishing_needs_two_layers():
    f = run("vanishing-gradients", layers_history({"fc0": [1.0] * 5}))
    assert f.severity is Severity.SKIPPED
    assert f.summary == ("The vanishing-gradients check needs per-layer gradient norms for at "
                         "least 2 weight layers; the history has 1.")


# -- exploding gradients ------------------------------------------------------------------------
def exploding(norms, loss=None, first=None, jump=True) -> History:
    """A falling loss (2.3 -> 0.6) that, with ``jump``, jumps to 5 at every record whose norm
    is 5x the median or more (an explosion moves the loss; Pascanu et al. 2013)."""
    n = len(norms)
    typical = sorted(norms)[n // 2]
    if loss is None:
        loss = [5.0 if jump and v >= 5 * typical else 2.3 - 1.7 * i / (n - 1)
                for i, v in enumerate(norms)]
    return layers_history({"fc0": list(first or norms), "fc1": list(norms)}, list(loss))


def test_a_50x_spike_is_a_warning():
    norms = [1.0] * 12
    norms[6] = 50.0
    f = run("exploding-gradients", exploding(norms))
    assert f.severity is Severity.WARN
    assert f.summary == ("Gradients explode: the total gradient norm spiked to 70.7, 50 times its "
                         "running median (floored at the run's established "
                         "scale; 1 spikes >= 10x).")
    assert "Clip gradients" in f.remedy and "lower learning rate" in f.remedy
    assert f.evidence["max_spike_step"] == 60


@pytest.mark.parametrize(("spike", "severity"), [(9.9, Severity.PASS), (10.0, Severity.WARN),
                                                 (99.0, Severity.WARN), (100.0, Severity.FAIL)])
def test_spike_thresholds_both_sides(spike, severity):
    norms = [1.0] * 12
    norms[6] = spike
    assert run("exploding-gradients", exploding(norms)).severity is severity


def test_a_large_first_norm_is_evidence_not_the_floor():
    # the vanilla-RNN case: a huge first gradient, later spikes against a norm of ~3
    norms = [230.0] + [3.0] * 20 + [51.0] + [3.0] * 5
    f = run("exploding-gradients", exploding(norms))
    assert f.evidence["spike_factor_per_step"][0] is None  # nothing before it: never a spike
    assert f.evidence["spike_factor_per_step"][21] == pytest.approx(17.0)
    assert f.severity is Severity.WARN and f.evidence["n_spikes"] == 1
    assert f.evidence["first_step"] == 210


def test_a_gradient_collapse_after_the_first_record_is_not_a_spike():
    # the loss falls to ~0 within the first records (blobs-adam-fast): the first, largest norm
    # must not be judged against the collapsed scale that follows it
    norms = [1.4, 0.02, 1e-4, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5]
    f = run("exploding-gradients", exploding(norms, loss=[1.2, 5e-3, 1e-7] + [1e-8] * 5))
    assert f.severity is Severity.PASS
    assert f.evidence["raw_spike_factor_per_step"][:2] == [None, pytest.approx(0.02 / 1.4)]


@pytest.mark.parametrize(("jump", "severity"), [(True, Severity.WARN), (False, Severity.PASS)])
def test_a_spike_counts_only_with_a_jump_of_the_loss(jump, severity):
    norms = [1.0] * 12
    norms[6] = 50.0
    f = run("exploding-gradients", exploding(norms, jump=jump))
    assert f.severity is severity
    if not jump:  # a hard batch: a 50x gradient, the loss kept falling
        assert f.summary == ("No exploding gradients: the largest spike, 50x the running median "
                             "(floored at the run's established scale), came without a jump of "
                             "the loss (a hard batch, not an explosion), the norm changed 1x "
                             "from the first to the last quarter, and the first/last layer "
                             "ratio is 1 (<= 70).")


def test_a_spike_without_the_loss_keeps_the_gradient_rule():
    norms = [1.0] * 12
    norms[6] = 50.0
    h = exploding(norms)
    h.step_loss = [None] * 12
    assert run("exploding-gradients", h).severity is Severity.WARN


def test_the_loss_jump_may_come_at_the_next_record():
    from explain.checks.exploding_gradients import loss_jumps
    assert loss_jumps([2.0, 1.5, 1.0, 1.2, 3.0, 1.0], 3) == [None, False, False, True, True,
                                                               False]


def test_a_spike_between_samples_is_seen_through_the_running_max():
    h = exploding([1.0] * 12)
    h.between = {"grad_norm_max": [1.5] * 6 + [30.0] + [1.5] * 5,  # step 61-69 peaked at 30
                 "loss_max": [2.0] * 6 + [6.0] + [1.0] * 5}  # ... and so did the loss
    f = run("exploding-gradients", h)
    assert f.severity is Severity.WARN and f.evidence["max_norm"] == 30.0
    assert f.evidence["max_spike"] == pytest.approx(30 / 1.5)  # against the earlier peaks


def test_peaks_are_judged_against_peaks_not_against_single_samples():
    # every record's peak (the largest of ~10 steps) is 8x the sampled norm: no spike
    h = exploding([1.0] * 12)
    h.between = {"grad_norm_max": [8.0] * 12, "loss_max": [2.0] * 8 + [6.0] + [1.0] * 3}
    assert run("exploding-gradients", h).severity is Severity.PASS
    h.between["grad_norm_max"][8] = 80.0  # ... one 10x the usual peak is
    assert run("exploding-gradients", h).evidence["max_spike"] == pytest.approx(10.0)


def test_a_late_blip_below_the_starting_norm_is_not_a_spike():
    # norms shrink 100x as the loss nears zero; one hard batch returns to the starting scale
    norms = [1.0] * 10 + [0.01] * 29 + [0.5]
    f = run("exploding-gradients", exploding(norms))
    assert f.severity is Severity.PASS
    assert f.evidence["spike_factor_per_step"][-1] == pytest.approx(0.5)  # 50x the recent median
    norms[-1] = 10.0  # ... but leaving the run's range is one
    assert run("exploding-gradients", exploding(norms)).severity is Severity.WARN


def test_spike_with_a_stalled_loss_fails():
    norms = [1.0] * 12
    norms[6] = 20.0
    f = run("exploding-gradients", exploding(norms, loss=[2.3] * 6 + [5.0] + [2.3] * 5))
    assert f.severity is Severity.FAIL
    assert f.summary.endswith("; 1 spikes >= 10x); the loss fell 0%.")


def test_growth_is_a_warning():
    norms = [1000 ** (i / 39) for i in range(40)]  # smooth ~200x growth, no single 10x spike
    f = run("exploding-gradients", exploding(norms, jump=False))
    assert f.severity is Severity.WARN
    assert f.evidence["n_spikes"] == 0
    assert f.summary.startswith("Gradients explode: it grew ")


def test_autotrainer_first_last_ratio_above_70_warns():
    f = run("exploding-gradients", exploding([1.0] * 12, first=[80.0] * 12))
    assert f.severity is Severity.WARN
    assert f.summary == ("Gradients explode: the first layer's gradient norm is 80 times the last "
                         "layer's (> 70).")


def test_healthy_decaying_norms_pass():
    norms = [4.0, 3.0, 2.5, 2.0, 1.8, 1.5, 1.4, 1.2, 1.1, 1.0, 1.0, 0.9]
    f = run("exploding-gradients", exploding(norms, jump=False))
    assert f.severity is Severity.PASS
    assert f.summary == ("No exploding gradients: the largest spike is 0.75x the running median "
                         "(floored at the run's established scale; < 10x), the norm changed "
                         "0.333x from the first to the last quarter, and the first/last layer "
                         "ratio is 1 (<= 70).")
    assert f.evidence["raw_spike_factor_per_step"][:2] == [None, pytest.approx(3.0 / 4.0)]


def test_exploding_needs_five_sampled_steps():
    f = run("exploding-gradients", exploding([1.0] * 4))
    assert f.severity is Severity.SKIPPED
    assert "5 or more sampled steps; the history has 4." in f.summary


# -- non-finite ---------------------------------------------------------------------------------
def test_non_finite_counts():
    h = History()
    assert run("non-finite", h).summary == "No non-finite values were recorded."
    h.nonfinite.update(loss=1, grad=3)
    f = run("non-finite", h)
    assert f.severity is Severity.FAIL
    assert f.summary == "4 non-finite values were recorded: 1 in the loss, 3 in gradients."
    assert f.evidence["counts"] == {"loss": 1, "grad": 3, "weight": 0, "activation": 0}
    h.nonfinite.update(loss=0, grad=0, weight=1)
    assert run("non-finite", h).summary == ("1 non-finite value was recorded: 1 in weights.")


def test_non_finite_through_diagnose_fails_first():
    h = History()
    h.nonfinite["activation"] = 2
    findings = diagnose(h)
    assert findings[0].check == "non-finite" and findings[0].severity is Severity.FAIL


# -- remaining threshold boundaries ------------------------------------------------------------
@pytest.mark.parametrize(("g_first", "severity"), [(0.9e-4, Severity.FAIL), (1.1e-4, Severity.INFO)])
def test_vanishing_abs_threshold_both_sides(g_first, severity):
    # ratio ~1e-5 in both cases; only the absolute first-layer norm differs
    assert run("vanishing-gradients", vanishing(g_first, g_last=10.0)).severity is severity


@pytest.mark.parametrize(("end", "severity"), [(2.07, Severity.FAIL), (2.05, Severity.WARN)])
def test_min_loss_progress_threshold_both_sides(end, severity):
    loss = [2.3] * 5 + [end] * 5  # progress 0.100 (end 2.07) vs 0.109 (end 2.05)
    got = run("vanishing-gradients", vanishing(1e-9, loss=loss), min_loss_progress=0.105)
    assert got.severity is severity


@pytest.mark.parametrize(("ratio", "severity"), [(70.0, Severity.PASS), (71.0, Severity.WARN)])
def test_exploding_ratio_threshold_both_sides(ratio, severity):
    assert run("exploding-gradients", exploding([1.0] * 12, first=[ratio] * 12)).severity \
        is severity


@pytest.mark.parametrize(("total", "severity"), [(50.0, Severity.PASS), (2000.0, Severity.WARN)])
def test_growth_threshold_both_sides(total, severity):
    norms = [total ** (i / 59) for i in range(60)]  # smooth growth, no single 10x spike
    f = run("exploding-gradients", exploding(norms, jump=False))
    assert f.evidence["n_spikes"] == 0
    assert f.severity is severity


def test_exactly_zero_first_layer_gradient_points_to_dead_units():
    f = run("vanishing-gradients", vanishing(0.0))
    assert f.severity is Severity.FAIL
    assert f.summary == ("Gradients vanish: the first layer's gradient norm (fc0, median 0) is 0 "
                         "times the last layer's (fc2, 0.01) (exactly zero: no gradient reaches "
                         "it, e.g. dead ReLUs or a frozen layer; see dead-units), below 0.001, and "
                         "the loss fell 0% (< 10%).")


def test_without_a_training_loss_the_sustained_gl_alone_decides():
    n = len(RISING)
    f = run("overfitting", epochs_history(RISING, train_acc=[1.0] * n, val_acc=[0.95] * n))
    assert f.severity is Severity.WARN and f.evidence["rise_by"] == "gl"
    assert f.summary == ("Overfitting: the generalization loss GL exceeded 5 for 3 or more epochs "
                         "from epoch 6 (up to 50: validation loss 50% above its minimum at epoch "
                         "3) (the training loss was not logged); the relative train/val accuracy "
                         "gap is 0.05 (<= 0.1); stop at epoch 3.")


def test_a_spike_after_the_last_record_counts():
    norms = [1.0] * 12
    h = exploding(norms)
    h.between = {"grad_norm_max": [2.0] * 12, "loss_max": [2.3] * 12}
    h.meta["between_tail"] = {"step": 130, "count": 9, "grad_norm_max": 60.0, "loss_max": 6.0}
    f = run("exploding-gradients", h)
    assert f.severity is Severity.WARN
    assert f.summary == ("Gradients explode: the total gradient norm spiked to 60, 30 times its "
                         "running median (floored at the run's established "
                         "scale; 1 spikes >= 10x).")
    assert f.evidence["max_spike_step"] == 130 and f.evidence["steps"][-1] == 130
    h.meta["between_tail"]["grad_norm_max"] = 19.0  # 9.5x the earlier peaks: no spike
    assert run("exploding-gradients", h).severity is Severity.PASS


def test_a_spike_the_loop_clipped_is_info_while_the_loss_falls():
    norms = [1.0] * 12
    norms[6] = 50.0
    h = exploding(norms)
    h.meta["clipping"] = True
    f = run("exploding-gradients", h)
    assert f.severity is Severity.INFO
    assert f.summary == ("Gradient spikes contained by clipping: before clipping, the total "
                         "gradient norm spiked to 70.7, 50 times its running median (floored at "
                         "the run's established scale; 1 spikes >= 10x); the loop clipped its "
                         "gradients, and the loss still fell 74%.")
    assert "lower learning rate" in f.remedy
    h.meta["clipping"] = False
    assert run("exploding-gradients", h).severity is Severity.WARN
    norms[6] = 100.0  # >= spike_fail_factor: a FAIL that clipping does not soften
    severe = exploding(norms)
    severe.meta["clipping"] = True
    assert run("exploding-gradients", severe).severity is Severity.FAIL


def test_loss_progress_uses_the_epochs_when_the_records_stop_early():
    from explain.checks.base import loss_progress
    h = History()
    h.steps, h.step_loss = [0, 8, 16, 24, 32], [2.23, 2.2, 2.15, 2.1, 2.06]  # records: epochs 1-4
    for loss in [2.2, 2.0, 1.9] + [1.8] * 20 + [1.7, 1.67]:
        h.log_epoch(train_loss=loss)
    h.meta["epoch_end_steps"] = [8 * (i + 1) for i in range(25)]
    p = loss_progress(h)
    assert p["source"] == "train_loss" and p["progress"] == pytest.approx((2.2 - 1.67) / 2.2)
    h.steps[-1] = 192  # the last record in the last epoch (which began at step 192)
    assert loss_progress(h)["source"] == "step_loss"
