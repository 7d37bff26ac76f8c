""":func:`evaluate`: every trust metric of one attribution and the verdict they add up to.

The thresholds and their rationale are documented in the :mod:`explain.quality` docstring.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from explain._validation import check_float, check_int, unknown_name
from explain.attribution.result import Attribution
from explain.card import Modality
from explain.errors import AttributionError, DataMismatchError, InvalidTypeError
from explain.quality import fidelity
from explain.quality._common import (
    ExplainFn,
    attribution_values,
    device_of,
    median,
    model_guard,
    real_mask,
    resolve_modality,
    to_list,
)
from explain.quality.faithfulness import deletion_insertion
from explain.quality.result import Quality, Verdict
from explain.quality.sanity import cascading_randomization

__all__ = ["METRICS", "evaluate", "default_explain_fn"]

#: Every metric :func:`evaluate` can compute, in the order it computes them.
METRICS = ("completeness", "faithfulness", "sanity", "infidelity", "sensitivity")


def default_explain_fn(method: str, options: dict[str, Any] | None = None) -> ExplainFn:
    """``explain_fn`` that reruns :func:`explain.attribute` with ``method`` (imported lazily)."""
    options = dict(options or {})

    def explain_fn(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        try:
            from explain.attribution import attribute
        except ImportError as exc:
            raise AttributionError(
                "evaluate needs explain.attribute to recompute the explanation for 'sanity' and "
                f"'sensitivity', but it could not be imported ({exc}). Pass "
                "explain_fn=lambda model, inputs, target: <values> instead.") from exc
        return attribute(model, inputs, target=target, method=method, **options).values
    return explain_fn


def _check_metrics(metrics: str | Sequence[str]) -> tuple[str, ...]:
    names = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    for name in names:
        if name not in METRICS:
            raise unknown_name("quality metric", name, METRICS)
    return tuple(m for m in METRICS if m in names)


def _inputs_of(attribution: Attribution, inputs: torch.Tensor | None, n: int) -> torch.Tensor:
    if inputs is None:
        return attribution.inputs[:n].detach().cpu()
    if not isinstance(inputs, torch.Tensor):
        raise InvalidTypeError(
            f"The 'inputs' parameter of evaluate must be a torch.Tensor or None. Got "
            f"{type(inputs).__name__} instead.")
    if tuple(inputs.shape) != tuple(attribution.inputs.shape):
        raise DataMismatchError(
            f"The 'inputs' of evaluate have shape {tuple(inputs.shape)} but the attribution was "
            f"computed on inputs of shape {tuple(attribution.inputs.shape)}. Pass the inputs "
            f"the attribution explains (or inputs=None to use attribution.inputs).")
    return inputs[:n].detach().cpu()


def evaluate(model: nn.Module, inputs: torch.Tensor | None, attribution: Attribution, *,
             metrics: str | Sequence[str] = METRICS, n_samples: int = 8, steps: int = 20,
             n_random: int = 3, patch_size: int | None = None, explain_fn: ExplainFn | None = None,
             attribute_options: dict[str, Any] | None = None,
             modality: str | Modality | None = None, seed: int = 0, batch_size: int = 256,
             infidelity_perturbations: int = 16, sensitivity_perturbations: int = 4,
             sensitivity_radius: float = 0.02, sanity_checkpoints: int = 4,
             sanity_abs: bool = False, max_completeness_error: float = 0.05,
             max_sanity_correlation: float = 0.5, max_sensitivity: float = 1.0,
             min_faithfulness_margin: float = 0.0) -> Quality:
    """Measure how far ``attribution`` can be trusted and give a one-line verdict.

    Parameters
    ----------
    model : the model explained. It is never changed (mode, parameters, buffers, gradients).
    inputs : the inputs explained (``None``: ``attribution.inputs``).
    attribution : an :class:`explain.Attribution`.
    metrics : which of ``"completeness"``, ``"faithfulness"``, ``"sanity"``, ``"infidelity"``,
        ``"sensitivity"`` to compute.
    n_samples : evaluate the first ``n_samples`` samples only.
    steps : intervals of the deletion/insertion curves.
    n_random : random orders averaged for the random-order AUC.
    patch_size : image patch side for the curves (default ~16 patches per side).
    explain_fn : ``explain_fn(model, inputs, target) -> values`` recomputing the explanation
        (sanity, sensitivity); default reruns :func:`explain.attribute` with the same method.
    attribute_options : keyword arguments for the default ``explain_fn``.
    modality : override the modality (default: the model card's, else from the input shape).
    seed : seed of every random draw (orders, perturbations, re-initialization).
    batch_size : rows per forward pass.
    infidelity_perturbations, sensitivity_perturbations, sensitivity_radius : metric sizes.
    sanity_checkpoints : explanations recomputed along the randomization cascade.
    sanity_abs : correlate absolute maps in the sanity test (default: signed maps).
    max_completeness_error, max_sanity_correlation, max_sensitivity, min_faithfulness_margin :
        the verdict's thresholds.

    Returns
    -------
    Quality

    Examples
    --------
    >>> import torch
    >>> from captum.attr import IntegratedGradients
    >>> from explain import Attribution
    >>> model = torch.nn.Linear(4, 2)
    >>> x, t = torch.randn(3, 4), torch.tensor([0, 1, 0])
    >>> values = IntegratedGradients(model).attribute(x, target=t)
    >>> attr = Attribution(values=values, method="integrated_gradients", target=t, inputs=x)
    >>> q = evaluate(model, x, attr, metrics=("completeness",))
    >>> q.verdict.value, q.medians["completeness"] < 1e-4
    ('trustworthy', True)
    """
    if not isinstance(model, nn.Module):
        raise InvalidTypeError(
            f"The 'model' parameter of evaluate must be a torch.nn.Module. Got "
            f"{type(model).__name__} instead.")
    if not isinstance(attribution, Attribution):
        raise InvalidTypeError(
            f"The 'attribution' parameter of evaluate must be an explain.Attribution. Got "
            f"{type(attribution).__name__} instead. Compute one with explain.attribute(...).")
    names = _check_metrics(metrics)
    n = check_int(n_samples, "n_samples", owner="evaluate", min=1)
    opts = {
        "steps": check_int(steps, "steps", owner="evaluate", min=2),
        "n_random": check_int(n_random, "n_random", owner="evaluate", min=1),
        "batch_size": check_int(batch_size, "batch_size", owner="evaluate", min=1),
        "seed": check_int(seed, "seed", owner="evaluate", min=0),
    }
    infidelity_perturbations = check_int(infidelity_perturbations, "infidelity_perturbations",
                                         owner="evaluate", min=1)
    sensitivity_perturbations = check_int(sensitivity_perturbations, "sensitivity_perturbations",
                                          owner="evaluate", min=1)
    sensitivity_radius = check_float(sensitivity_radius, "sensitivity_radius", owner="evaluate",
                                     min=0, min_inclusive=False)
    sanity_checkpoints = check_int(sanity_checkpoints, "sanity_checkpoints", owner="evaluate",
                                   min=1)
    if patch_size is not None:
        patch_size = check_int(patch_size, "patch_size", owner="evaluate", min=1)
    thresholds = {
        "max_completeness_error": check_float(max_completeness_error, "max_completeness_error",
                                              owner="evaluate", min=0),
        "max_sanity_correlation": check_float(max_sanity_correlation, "max_sanity_correlation",
                                              owner="evaluate", min=-1, max=1),
        "max_sensitivity": check_float(max_sensitivity, "max_sensitivity", owner="evaluate",
                                       min=0),
        "min_faithfulness_margin": check_float(min_faithfulness_margin,
                                               "min_faithfulness_margin", owner="evaluate"),
    }
    x = _inputs_of(attribution, inputs, n)
    n = x.shape[0]
    values = attribution_values(attribution, n)
    target = attribution.target[:n].detach().cpu().long()
    baselines = attribution.baselines
    kind = resolve_modality(model, x, modality)
    fn = explain_fn or default_explain_fn(attribution.method, attribute_options)
    method = attribution.method
    per: dict[str, list[float | None]] = {}
    curves: dict[str, list[float | None]] = {}
    sanity_curve: dict[str, list[Any]] = {}
    notes: list[str] = []
    done: list[str] = []
    timings: dict[str, float] = {}

    def run(name: str, work) -> None:
        start = time.perf_counter()
        try:
            work()
            done.append(name)
        except Exception as exc:  # one metric failing must not sink the others
            notes.append(f"{name}: could not run ({type(exc).__name__}: {exc})")
        timings[name] = round(time.perf_counter() - start, 4)

    def completeness() -> None:
        delta = attribution.convergence_delta
        err, _gap = fidelity.completeness(model, x, values, target, baselines,
                                          delta=None if delta is None else delta[:n],
                                          batch_size=opts["batch_size"])
        per["completeness"] = to_list(err)

    def faithfulness() -> None:
        c = deletion_insertion(model, x, values, target, baselines, kind,
                               steps=opts["steps"], n_random=opts["n_random"], seed=opts["seed"],
                               patch_size=patch_size, batch_size=opts["batch_size"])
        per.update(deletion_auc=to_list(c.deletion), insertion_auc=to_list(c.insertion),
                   random_deletion_auc=to_list(c.random_deletion),
                   random_insertion_auc=to_list(c.random_insertion))
        curves.update({"fraction": to_list(c.fractions)},
                      **{k: to_list(v) for k, v in c.mean_curves.items()})

    def sanity() -> None:
        s = cascading_randomization(model, x, values, target, fn, real_mask(x, kind),
                                    checkpoints=sanity_checkpoints, use_abs=sanity_abs,
                                    seed=opts["seed"])
        per["sanity"] = to_list(s.final)
        sanity_curve.update(layer=s.checkpoints, correlation=to_list(s.curve), layers=s.layers)

    def infidelity() -> None:
        per["infidelity"] = to_list(fidelity.infidelity(
            model, x, values, target, baselines, method, kind,
            n_perturb=infidelity_perturbations, seed=opts["seed"],
            batch_size=opts["batch_size"]))

    def sensitivity() -> None:
        per["sensitivity"] = to_list(fidelity.sensitivity(
            model, x, target, fn, kind, n_perturb=sensitivity_perturbations,
            radius=sensitivity_radius, seed=opts["seed"], batch_size=opts["batch_size"]))

    work = {"completeness": completeness, "faithfulness": faithfulness, "sanity": sanity,
            "infidelity": infidelity, "sensitivity": sensitivity}
    device = device_of(model)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), \
            model_guard(model):
        torch.manual_seed(opts["seed"])  # stochastic explainers (SmoothGrad) repeat; global RNG kept
        for name in names:
            skip = _not_applicable(name, method, kind)
            if skip:
                notes.append(skip)
            else:
                run(name, work[name])
    medians = {k: _finite_or_none(median(v)) for k, v in per.items()}
    verdict, passed, reasons = _grade(names, done, medians, thresholds, notes)
    summary = _summary(method, n, verdict, medians, sanity_curve, done)
    return Quality(method=method, verdict=verdict, summary=summary, n_samples=n,
                   metrics=tuple(done), per_sample=per, medians=medians, passed=passed,
                   curves=curves, sanity_curve=sanity_curve, reasons=tuple(reasons),
                   notes=tuple(notes), thresholds=thresholds, timings=timings)


def _finite_or_none(v: float) -> float | None:
    return v if v == v and abs(v) != float("inf") else None


def _not_applicable(name: str, method: str, kind: Modality) -> str:
    if name == "completeness" and method not in fidelity.COMPLETE_METHODS:
        return (f"completeness: not applicable to {method!r} (only path and Shapley methods "
                f"sum to f(x) - f(baseline))")
    if name in ("infidelity", "sensitivity") and kind is Modality.TEXT:
        return f"{name}: not defined for token ids (they cannot be nudged by noise)"
    return ""


def _grade(requested: tuple[str, ...], done: list[str], med: dict[str, float | None],
           th: dict[str, float], notes: list[str]) -> tuple[Verdict, dict[str, bool], list[str]]:
    passed: dict[str, bool] = {}
    reasons: list[str] = []
    if "completeness" in done and med.get("completeness") is not None:
        passed["completeness"] = med["completeness"] <= th["max_completeness_error"]
        if not passed["completeness"]:
            reasons.append(f"completeness error {med['completeness']:.1%} of |f(x)-f(b)| > "
                           f"{th['max_completeness_error']:.0%}")
    if "faithfulness" in done and med.get("deletion_auc") is not None:
        margin = th["min_faithfulness_margin"]
        passed["deletion"] = med["deletion_auc"] < med["random_deletion_auc"] - margin
        passed["insertion"] = med["insertion_auc"] > med["random_insertion_auc"] + margin
        if not passed["deletion"]:
            reasons.append(f"deletion AUC {med['deletion_auc']:.2f} is not below the random-order "
                           f"{med['random_deletion_auc']:.2f}")
        if not passed["insertion"]:
            reasons.append(f"insertion AUC {med['insertion_auc']:.2f} is not above the "
                           f"random-order {med['random_insertion_auc']:.2f}")
    if "sensitivity" in done and med.get("sensitivity") is not None:
        passed["sensitivity"] = med["sensitivity"] <= th["max_sensitivity"]
        if not passed["sensitivity"]:
            reasons.append(f"max-sensitivity {med['sensitivity']:.2f} > {th['max_sensitivity']}")
    sanity_failed = False
    if "sanity" in done and med.get("sanity") is None:
        reasons.append("the sanity correlation is undefined (constant maps explain nothing)")
    if "sanity" in done and med.get("sanity") is not None:
        passed["sanity"] = med["sanity"] <= th["max_sanity_correlation"]
        sanity_failed = not passed["sanity"]
        if sanity_failed:
            reasons.insert(0, f"rank correlation {med['sanity']:.2f} with the map of a fully "
                              f"randomized model > {th['max_sanity_correlation']}")
    for name in requested:
        if name in ("completeness", "faithfulness", "sanity", "sensitivity") and \
                name not in done and any(note.startswith(f"{name}: could not") for note in notes):
            reasons.append(f"{name} could not be computed")
    if sanity_failed:
        return Verdict.FAILS_SANITY, passed, reasons
    if not passed and not reasons:
        reasons.append("no graded metric could be computed")
    return (Verdict.DOUBTFUL if reasons else Verdict.TRUSTWORTHY), passed, reasons


def _summary(method: str, n: int, verdict: Verdict, med: dict[str, float | None],
             sanity_curve: dict[str, list[Any]], done: list[str]) -> str:
    parts = []
    if med.get("completeness") is not None:
        parts.append(f"completeness error {med['completeness']:.1%} of |f(x)-f(b)|")
    if med.get("deletion_auc") is not None:
        parts.append(f"deletion AUC {med['deletion_auc']:.2f} vs {med['random_deletion_auc']:.2f} "
                     f"random, insertion AUC {med['insertion_auc']:.2f} vs "
                     f"{med['random_insertion_auc']:.2f} random")
    if med.get("sanity") is not None:
        layers = len(sanity_curve.get("layers", []))
        parts.append(f"rank correlation {med['sanity']:.2f} after randomizing all {layers} layers")
    if med.get("infidelity") is not None:
        parts.append(f"infidelity {med['infidelity']:.3g}")
    if med.get("sensitivity") is not None:
        parts.append(f"max-sensitivity {med['sensitivity']:.2f}")
    numbers = "; ".join(parts) if parts else "no metric could be computed"
    return f"{method} on {n} samples: {verdict.label} ({numbers})."
