"""Every threshold the checks use, with its default, its meaning and the anchor it comes from.

A threshold is overridden per call: ``explain.diagnose(history, vanishing_ratio=1e-4)``. Names are
validated (an unknown name raises :class:`~explain.errors.UnknownNameError` listing the valid
ones) and so are values (:func:`validate_thresholds`).

The defaults are chosen to be *scale free* wherever possible, so they carry over to architectures,
data and training loops not in this repository: ratios of gradient norms between layers or over
time, relative changes of the loss, fractions of units, exponents of a spectrum. Absolute
quantities are used only where the published anchor uses them (AUTOTRAINER's 1e-4 on the first
layer's gradient norm), and then only together with a ratio.

Calibration signals measured in this project (see ``benchmarks/diagnosis.py``):

* a 10-layer sigmoid MLP on MNIST has a first/last gradient-norm ratio of ~1e-7 and learns
  nothing; the same net with ReLU and default init has ~2e-2 and trains fine;
* a GRU trained with SGD at lr 10 reaches gradient norms of ~1.8e5;
* a CNN trained on 300 samples reaches a train/val accuracy gap of 0.11-0.12 while its validation
  loss rises from its minimum (epoch ~11); with dropout and early stopping the gap is still
  0.08-0.10, so the gap alone is not a verdict.

``benchmarks/diagnosis.py`` on the zoo presets (full epochs, CPU) measured: first/last gradient
ratio 3.5e-17 (mlp-vanishing) vs 0.12-7.7 (others); spike 95x with a rising loss (rnn-exploding)
vs <= 2.2x (others); dead units 100% (mlp-dead-relu), 59% (cnn-overfit's head) vs <= 11%
(healthy); relative gap 0.096 with validation loss 31% above its minimum for 27 epochs
(cnn-overfit) vs 0.067 / 30% / 19 epochs (rnn-vowels, which does overfit after its minimum:
its preset now stops early). Prechelt's progress quotient PQ, at the end of a sustained GL rise:
<= 0.09 on every healthy run of both suites (cnn-mnist 0.03, lstm-adam-accum 0.09: validation
losses that rise while the training loss still falls fast), 1.4-7 on the overfitting runs whose
training loss flattens; cnn-overfit, whose training loss keeps halving at 5e-4, reaches 0.22 and
is found by its accuracy gap (0.15).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from explain._validation import check_float, check_int, unknown_name

__all__ = ["Threshold", "THRESHOLDS", "defaults", "validate_thresholds"]


@dataclass(frozen=True)
class Threshold:
    """One documented threshold.

    Attributes
    ----------
    name : keyword accepted by :func:`explain.diagnose`.
    default : the value used when the caller gives none.
    checks : ids of the checks that read it.
    meaning : what the number means, in one sentence.
    anchor : where the default comes from (a paper, a tool, a measurement here).
    minimum : smallest valid value; ``strict`` makes it exclusive.
    integer : whether the value must be an int.
    """

    name: str
    default: float
    checks: tuple[str, ...]
    meaning: str
    anchor: str
    minimum: float = 0.0
    strict: bool = True
    maximum: float | None = None
    integer: bool = False


_T = Threshold

#: Registry of every threshold, by name (documentation and validation in one place).
THRESHOLDS: dict[str, Threshold] = {t.name: t for t in [
    # -- shared ------------------------------------------------------------------------------
    _T("tail_fraction", 0.25, ("dead-units", "saturation"),
       "Fraction of the last sampled steps whose median describes the end of training.",
       "Robust-statistics convention: a median over the last quarter ignores single noisy "
       "batches yet reflects the final state.", maximum=1.0),
    _T("min_loss_progress", 0.1, ("vanishing-gradients", "exploding-gradients",
                                  "temporal-gradient-decay"),
       "The loss counts as 'not decreasing' when it fell by less than this fraction of its "
       "starting value (median of the first vs the last tenth of the sampled steps).",
       "A 10-class net that learns nothing stays at ln(10)=2.30 (progress ~0); healthy runs here "
       "cut the loss by > 50%. 10% leaves room for slow but real learning."),
    # -- overfitting ---------------------------------------------------------------------------
    _T("overfit_gap", 0.1, ("overfitting",),
       "Relative train/validation degradation (train_acc - val_acc) / train_acc (or the "
       "relative loss gap when accuracy is not logged) above which the gap counts: with a "
       "sustained generalization loss it turns overfitting into a FAIL; alone it is an INFO "
       "'generalization gap'.",
       "deepchecks' TrainTestPerformance condition: relative degradation > 0.1. Measured here: "
       "overfit CNN 0.11-0.12, regularized CNN 0.08-0.10."),
    _T("overfit_gl", 5.0, ("overfitting",),
       "Prechelt's generalization loss GL(t) = 100 (E_va(t) / E_opt(t) - 1), in percent of the "
       "lowest validation loss so far, above which the validation loss has risen.",
       "Prechelt, 'Early stopping - but when?' (1998): the GL_alpha stopping criteria, alpha "
       "1-5 in his study; 5 is the most tolerant of them."),
    _T("overfit_pq", 1.0, ("overfitting",),
       "Prechelt's progress quotient PQ(t) = GL(t) / P_k(t), with the training progress "
       "P_k(t) = 1000 (sum over the last k epochs of E_tr / (k min E_tr) - 1), above which a "
       "sustained GL is overfitting: below it the training loss still falls fast enough that "
       "the validation-loss rise may be repaired.",
       "Prechelt, 'Early stopping - but when?' (1998): PQ_alpha criteria with alpha 0.5-3 in "
       "his study. 1 is their geometric middle (sqrt(0.5 * 3) = 1.2, rounded to the unit) and "
       "the unit of his own scales (GL in percent, P in per mille): the validation loss rose "
       "ten times more, relative to its minimum, than the training loss still moves within a "
       "strip. Without a logged training loss GL alone decides."),
    _T("overfit_strip", 5, ("overfitting",),
       "Strip length k, in epochs, of Prechelt's training progress P_k.",
       "Prechelt 1998 uses strips of k = 5 epochs.", minimum=2, strict=False, integer=True),
    _T("overfit_patience", 3, ("overfitting",),
       "Number of consecutive epochs with GL above overfit_gl (a sustained rise, not one noisy "
       "epoch); the training loss must fall over them.",
       "Keras/Lightning EarlyStopping patience defaults are 0-3; 3 rejects single-epoch noise.",
       minimum=1, strict=False, integer=True),
    # -- gradients -----------------------------------------------------------------------------
    _T("vanishing_ratio", 1e-3, ("vanishing-gradients",),
       "Median over sampled steps of |g_first| / |g_last| (gradient norm of the first weight "
       "layer over the last one) below which gradients vanish.",
       "AUTOTRAINER (Zhang et al., ICSE 2021): ratio < 1e-3. Measured here: sigmoid MLP 1e-7 "
       "(broken), ReLU MLP 2e-2 (healthy)."),
    _T("vanishing_abs", 1e-4, ("vanishing-gradients",),
       "Median gradient norm of the first layer below which it is 'tiny' in absolute terms.",
       "AUTOTRAINER: |g_first| < 1e-4 together with the ratio."),
    _T("exploding_ratio", 70.0, ("exploding-gradients",),
       "Median |g_first| / |g_last| above which early layers receive exploding gradients.",
       "AUTOTRAINER: ratio > 70."),
    _T("spike_factor", 10.0, ("exploding-gradients",),
       "A record is a spike when its total gradient norm (the largest since the previous record, "
       "when the monitor tracked every step) exceeds this multiple of the running median of the "
       "sampled steps before it, floored at the highest median of 5 consecutive earlier steps "
       "(late blips below the run's established scale are not explosions; the first record, "
       "with nothing before it, is never a spike). When the loss was logged, a spike counts "
       "only if the loss at its record or the next rose above every loss of the window before "
       "(Pascanu et al. 2013: exploding gradients show as a jump of the loss); a gradient "
       "spike the loss does not feel is a hard batch.",
       "An order of magnitude: mini-batch noise moves gradient norms by ~2-3x; a GRU at lr 10 "
       "measured here jumps to 1.8e5; a healthy GRU (rnn-vowels) has one 12x blip against the "
       "recent median near zero loss, 0.9x against the floored reference."),
    _T("spike_fail_factor", 100.0, ("exploding-gradients",),
       "Spike factor that is a FAIL on its own.", "Two orders of magnitude."),
    _T("growth_factor", 100.0, ("exploding-gradients",),
       "Median total gradient norm of the last quarter over the first quarter above which "
       "gradients grow (WARN; FAIL only with a loss that does not decrease).",
       "Two orders of magnitude: healthy runs measured here grow up to ~10x as learning starts "
       "(deep ReLU nets leave a flat start), so one order of magnitude is not a verdict."),
    _T("spike_window", 20, ("exploding-gradients",),
       "Number of previous sampled steps in the running median.",
       "Long enough to be robust, short enough to follow the normal decay of gradient norms.",
       minimum=3, strict=False, integer=True),
    # -- instability ---------------------------------------------------------------------------
    _T("unstable_loss_factor", 4.0, ("unstable-training",),
       "The loss is unstable when it exceeds this multiple of its first recorded value (the "
       "loss of the initial weights at step 0): at its peaks (spikes, WARN) or "
       "over the last quarter of training (divergence, FAIL).",
       "fastai's learning-rate finder stops when the loss exceeds 4x its best; measured against "
       "the start, since a converging run's best loss tends to zero and any batch is many "
       "times it.", minimum=1.0),
    _T("unstable_update_ratio", 0.1, ("unstable-training",),
       "Median over the records of the largest layer's update-to-weight ratio ||dW|| / ||W|| "
       "per step above which the updates are far too large.",
       "Karpathy's rule of thumb (CS231n): ~1e-3 is healthy; Adam at lr 1e-3 on small layers "
       "gives ~1e-2, so a hundred times the rule leaves room for it."),
    # -- units ---------------------------------------------------------------------------------
    _T("dead_warn", 0.3, ("dead-units",),
       "Fraction of units of a ReLU-family layer never active in a sampled batch (WARN).",
       "CS231n: 'as much as 40% of your network can be dead' with too high a learning rate; "
       "Lu et al. 2019 ('Dying ReLU and initialization'). Healthy nets measured here reach 17% "
       "(cnn-mnist's hidden head layer; a per-batch count overstates dataset-wide deadness), "
       "so 30% leaves margin.", maximum=1.0),
    _T("dead_fail", 0.5, ("dead-units",),
       "Fraction of dead units that is a FAIL: most of the layer no longer learns.",
       "Half the layer's capacity is gone.", maximum=1.0),
    _T("dead_fit_progress", 0.99, ("dead-units",),
       "Relative fall of the training loss (median of the first vs the last tenth of the "
       "sampled steps) at or above which dead units are spare capacity (INFO), not a "
       "pathology: the live units fit the data.",
       "Lu et al. 2019 ('Dying ReLU and initialization'): dying harms a net when it collapses "
       "the function; for cross-entropy a loss at 1% of its start (~ln K) leaves at most "
       "0.01 ln K / ln 2 of the training samples misclassified (3% for K = 10). The planted "
       "dead-ReLU runs measured here learn nothing (loss progress < 10%).", maximum=1.0),
    _T("saturation_warn", 0.3, ("saturation",),
       "Fraction of units of a sigmoid/tanh layer in the flat part of the non-linearity (WARN).",
       "Glorot & Bengio 2010 observed the top sigmoid layer saturating; Rakitianskaia & "
       "Engelbrecht 2015 measure saturation as a fraction of units.", maximum=1.0),
    _T("saturation_fail", 0.6, ("saturation",),
       "Fraction of saturated units that is a FAIL.", "Most of the layer passes ~no gradient.",
       maximum=1.0),
    # -- time ----------------------------------------------------------------------------------
    _T("temporal_ratio", 1e-3, ("temporal-gradient-decay",),
       "Median over samples of |dL/dx_first| / |dL/dx_last| (first vs last time step) below "
       "which the gradient vanishes through time.",
       "AUTOTRAINER's 1e-3 applied along time instead of depth (Bengio et al. 1994; Pascanu "
       "et al. 2013)."),
    _T("temporal_growth", 70.0, ("temporal-gradient-decay",),
       "Ratio above which the gradient explodes through time.", "AUTOTRAINER's 70."),
    _T("temporal_fit_progress", 0.9, ("temporal-gradient-decay",),
       "Relative fall of the training loss (median of the first vs the last tenth of the "
       "sampled steps) at or above which a ratio outside [temporal_ratio, temporal_growth] is "
       "an INFO: the run learned its task through the decay.",
       "Bengio et al. 1994 and Pascanu et al. 2013: a gradient that vanishes (or explodes) "
       "through time harms training by making long-range dependencies unlearnable (or the "
       "loss unstable); a run whose loss fell by 90% (K-class cross-entropy from ~ln K to "
       "<= 0.1 ln K) learned what it needed, so its decay is the task's short memory. A gated "
       "RNN starts with such decay at initialisation (ratios ~1e-5 in the first records).",
       maximum=1.0),
    # -- spectral ------------------------------------------------------------------------------
    _T("alpha_low", 2.0, ("spectral",),
       "Power-law exponent of a layer's eigenvalue spectrum (ESD of W^T W) below which the "
       "layer is over-trained.", "WeightWatcher (Martin & Mahoney 2021): alpha < 2."),
    _T("alpha_high", 6.0, ("spectral",),
       "Exponent above which a layer is barely trained (close to random).",
       "WeightWatcher: well-trained layers have 2 <= alpha <= 6."),
    _T("spectral_min_evals", 10, ("spectral",),
       "Smallest number of eigenvalues for which an exponent is estimated.",
       "A tail fit needs several points; WeightWatcher skips layers with too few evals.",
       minimum=3, strict=False, integer=True),
    _T("spectral_min_tail", 50, ("spectral",),
       "Fewest eigenvalues in the fitted tail for an alpha < alpha_low to be a WARN (it must "
       "also lie below alpha_low by more than 1.645 standard errors, (alpha - 1) / sqrt(n)); "
       "shorter tails give INFO.",
       "Clauset, Shalizi & Newman 2009: power-law fits on fewer than ~50 points are unreliable. "
       "Measured here: 64x64 random matrices fit alpha 2.3-6.5, trained 64x64 MLP layers "
       "1.7 with 33-point tails on a model that does not overfit.",
       minimum=1, strict=False, integer=True),
    # -- data ----------------------------------------------------------------------------------
    _T("sufficiency_gain", 0.02, ("data-sufficiency",),
       "Gain of the validation score per doubling of the training set above which more data "
       "would still help: the fitted power law's predicted gain when the curve carries a fit "
       "(zoo.learning_curve), else the last segment of the learning curve.",
       "Power-law learning curves (Hestness et al. 2017): the fit (or the last segment's slope) "
       "extrapolates; 2 points of accuracy per doubling is above typical seed-to-seed noise "
       "(~1 point)."),
    # -- model on data (explain.audit) ---------------------------------------------------------
    _T("calibration_ece", 0.05, ("calibration",),
       "Expected calibration error (15 equal-width bins) that the LOWER end of its 95% bootstrap "
       "interval must exceed for a WARN: the probabilities are not honest confidences.",
       "Guo et al. 2017 measure 4-10% ECE on modern networks before temperature scaling and "
       "~1-2% after; 5% sits between the two. The lower bound is read because the ECE of a "
       "finite sample is biased upwards (~0.02-0.03 for a calibrated model on 500 samples).",
       maximum=1.0),
    _T("shift_alpha", 0.05, ("distribution-shift",),
       "Family-wise significance level of the three shift tests (confidence KS, class-mix "
       "chi-square, representation MMD), Holm-adjusted: WARN when an adjusted p-value is at or "
       "below it.",
       "Holm 1979 keeps the chance of any false alarm <= alpha; measured here: MNIST vs held-out "
       "MNIST flagged in <= 5% of seeds, MNIST vs Fashion-MNIST always (tests/explain).",
       maximum=0.5),
    _T("baseline_margin", 0.0, ("shallow-baseline",),
       "Accuracy margin (deep minus the best shallow baseline, same test samples) that the "
       "LOWER end of its paired bootstrap 95% interval must exceed for a PASS.",
       "deepchecks' simple-model comparison asks the model to beat a simple one; the paired "
       "interval keeps a test-set fluke from deciding it. Measured here: TF-IDF + logistic "
       "regression 0.77 vs the zoo transformer's ~0.75 on the review snippets.",
       minimum=-1.0, strict=False, maximum=1.0),
    _T("robustness_mild_drop", 0.10, ("robustness",),
       "Relative loss of accuracy (1 - corrupted / clean) at the mildest of five corruption "
       "severities above which the model is brittle (WARN).",
       "ImageNet-C / MNIST-C (Hendrycks & Dietterich 2019; Mu & Gilmer 2019) design severity 1 "
       "to keep the input plainly recognisable; 10% is five times the ~2% sampling error of "
       "accuracy on the 300 corrupted samples.", maximum=1.0),
]}


def defaults() -> dict[str, float]:
    """Return ``{name: default}`` for every threshold."""
    return {name: t.default for name, t in THRESHOLDS.items()}


def validate_thresholds(overrides: Mapping[str, Any]) -> dict[str, float]:
    """Return every threshold's value, ``overrides`` applied and validated.

    Raises
    ------
    UnknownNameError
        A name that is not a threshold; the message lists the valid or closest names.
    InvalidInputError, InvalidTypeError
        A value of the wrong type or out of range.
    """
    values = defaults()
    for name, value in overrides.items():
        if name not in THRESHOLDS:
            raise unknown_name("threshold", name, THRESHOLDS)
        t = THRESHOLDS[name]
        if t.integer:
            values[name] = check_int(value, name, owner="diagnose", min=int(t.minimum))
        else:
            values[name] = cast(float, check_float(value, name, owner="diagnose", min=t.minimum,
                                                   min_inclusive=not t.strict, max=t.maximum))
    return values
