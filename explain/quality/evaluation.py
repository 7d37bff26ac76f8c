""":func:`evaluate`: run the registered trust metrics on one attribution and grade them.

The stages: validate the call and build one :class:`~explain.quality.base.MetricContext`; run each
requested metric (``TrustMetric.run`` never raises); add the metrics' own criteria up to a
:class:`~explain.quality.result.Verdict`; assemble the frozen :class:`Quality`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from explain._core.guard import ModelGuard
from explain._core.outputs import logits_model
from explain._core.tensors import device_of, infer_modality
from explain._validation import check_int, unknown_name
from explain.attribution.result import Attribution
from explain.card import Modality
from explain.errors import AttributionError, DataMismatchError, InvalidTypeError
from explain.quality._common import ExplainFn, attribution_values
from explain.quality.base import (
    MetricContext,
    MetricResult,
    MetricStatus,
    get_metric,
    list_metrics,
    resolve_options,
)
from explain.quality.result import Quality, Verdict

__all__ = ["METRICS", "evaluate", "default_explain_fn"]

#: The metrics :func:`evaluate` computes by default, in order: every registered metric except
#: the opt-in ones (``data_sanity``, run when ``data_model`` is given or it is named).
METRICS: tuple[str, ...] = tuple(m for m in list_metrics() if not get_metric(m).opt_in)


def default_explain_fn(method: str, options: Mapping[str, Any] | None = None) -> ExplainFn:
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


def evaluate(model: nn.Module, inputs: torch.Tensor | None, attribution: Attribution, *,
             metrics: str | Sequence[str] | None = None, n_samples: int = 8,
             explain_fn: ExplainFn | None = None, data_model: nn.Module | None = None,
             attribute_options: Mapping[str, Any] | None = None,
             modality: str | Modality | None = None, seed: int = 0, batch_size: int = 256,
             **options: Any) -> Quality:
    """Measure how far ``attribution`` can be trusted and give a one-line verdict.

    Parameters
    ----------
    model : the model explained. It is never changed (mode, parameters, buffers, gradients).
        Its forward may return logits, a ``ModelOutput`` / mapping with ``logits``, or a tuple
        whose first item is the logits.
    inputs : the inputs explained (``None``: ``attribution.inputs``).
    attribution : an :class:`explain.Attribution`.
    metrics : names among :func:`explain.list_metrics` (``"completeness"``,
        ``"faithfulness"``, ``"sanity"``, ``"infidelity"``, ``"sensitivity"``,
        ``"data_sanity"``); default :data:`METRICS`, plus ``"data_sanity"`` when ``data_model``
        is given.
    n_samples : evaluate the first ``n_samples`` samples only.
    explain_fn : ``explain_fn(model, inputs, target) -> values`` recomputing the explanation
        (sanity, sensitivity); default reruns :func:`explain.attribute` with the same method.
    data_model : the same architecture trained on permuted labels, for the data-randomization
        test (Adebayo et al. 2018; :mod:`explain.quality.data_sanity`); never changed. Zoo runs
        build it with :func:`zoo.learning.permuted_label_model`.
    attribute_options : keyword arguments for the default ``explain_fn``.
    modality : override the modality (default: the model card's, else from the input shape).
    seed : seed of every random draw (orders, perturbations, re-initialization).
    batch_size : rows per forward pass.
    **options : the metrics' sizes and the verdict's thresholds, by name (an unknown name
        raises :class:`explain.UnknownNameError`). Sizes, declared by the metrics:
        ``steps`` (20), ``n_random`` (3), ``patch_size`` (None): the faithfulness curves;
        ``sanity_checkpoints`` (4), ``sanity_abs`` (False): the randomization cascade;
        ``infidelity_perturbations`` (16); ``sensitivity_perturbations`` (4),
        ``sensitivity_radius`` (0.02). Thresholds, with their anchors in
        :mod:`explain.quality.thresholds`: ``max_completeness_error`` (0.05),
        ``min_faithfulness_margin`` (0.0), ``max_sanity_correlation`` (0.5),
        ``max_sensitivity`` (1.0), ``max_data_sanity_correlation`` (0.5).

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
    _check_types(model, attribution, data_model)
    model = logits_model(model)   # a ModelOutput / mapping / tuple forward -> its logits
    twin = None if data_model is None else logits_model(data_model)
    names = _check_metrics(metrics, twin is not None)
    sizes, thresholds = resolve_options(options)
    context = _context(model, inputs, attribution, n_samples=n_samples, modality=modality,
                       explain_fn=explain_fn, attribute_options=attribute_options, seed=seed,
                       batch_size=batch_size, options=sizes, thresholds=thresholds)
    context = replace(context, data_model=twin)
    device = device_of(model)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), \
            ModelGuard(model), (ModelGuard(twin) if twin is not None else nullcontext()):
        model.eval()
        if twin is not None:
            twin.eval()
        torch.manual_seed(context.seed)  # stochastic explainers (SmoothGrad) repeat
        results = [get_metric(name).run(context) for name in names]
    return _assemble(context, results)


def _check_types(model: Any, attribution: Any, data_model: Any = None) -> None:
    if not isinstance(model, nn.Module):
        raise InvalidTypeError(
            f"The 'model' parameter of evaluate must be a torch.nn.Module. Got "
            f"{type(model).__name__} instead.")
    if data_model is not None and not isinstance(data_model, nn.Module):
        raise InvalidTypeError(
            f"The 'data_model' parameter of evaluate must be a torch.nn.Module (the model "
            f"retrained on permuted labels) or None. Got {type(data_model).__name__} instead.")
    if not isinstance(attribution, Attribution):
        raise InvalidTypeError(
            f"The 'attribution' parameter of evaluate must be an explain.Attribution. Got "
            f"{type(attribution).__name__} instead. Compute one with explain.attribute(...).")


def _check_metrics(metrics: str | Sequence[str] | None, data_model: bool) -> tuple[str, ...]:
    if metrics is None:
        metrics = (*METRICS, *(["data_sanity"] if data_model else []))
    names = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    known = list_metrics()
    for name in names:
        if name not in known:
            raise unknown_name("quality metric", name, known)
    return tuple(m for m in known if m in names)


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


def _context(model: nn.Module, inputs: torch.Tensor | None, attribution: Attribution, *,
             n_samples: int, modality: str | Modality | None, explain_fn: ExplainFn | None,
             attribute_options: Mapping[str, Any] | None, seed: int, batch_size: int,
             options: dict[str, Any], thresholds: dict[str, float]) -> MetricContext:
    """The one context every metric reads: the first ``n_samples`` samples, validated."""
    n = check_int(n_samples, "n_samples", owner="evaluate", min=1)
    seed = check_int(seed, "seed", owner="evaluate", min=0)
    batch_size = check_int(batch_size, "batch_size", owner="evaluate", min=1)
    x = _inputs_of(attribution, inputs, n)
    n = x.shape[0]
    delta = attribution.convergence_delta
    if attribution.pad_id is not None and explain_fn is None:
        attribute_options = {"pad_id": attribution.pad_id, **(attribute_options or {})}
    return MetricContext(
        model=model, inputs=x, values=attribution_values(attribution, n),
        target=attribution.target[:n].detach().cpu().long(), method=attribution.method,
        modality=infer_modality(x, modality=modality, model=model, owner="evaluate"),
        explain_fn=explain_fn or default_explain_fn(attribution.method, attribute_options),
        baselines=attribution.baselines, convergence_delta=None if delta is None else delta[:n],
        seed=seed, batch_size=batch_size,
        pad_id=0 if attribution.pad_id is None else attribution.pad_id,
        options=options, thresholds=thresholds)


def _assemble(context: MetricContext, results: list[MetricResult]) -> Quality:
    """The frozen :class:`Quality` of the metrics' results."""
    per = {k: list(v) for r in results for k, v in r.per_sample.items()}
    medians = {k: r.median(k) for r in results for k in r.per_sample}
    verdict, passed, reasons = _grade(context, results)
    numbers = "; ".join(d for r in results if r.status is MetricStatus.COMPUTED
                        for d in [get_metric(r.metric).describe(r)] if d)
    summary = (f"{context.method} on {context.n_samples} samples: {verdict.label} "
               f"({numbers or 'no metric could be computed'}).")
    return Quality(
        method=context.method, verdict=verdict, summary=summary, n_samples=context.n_samples,
        metrics=tuple(r.metric for r in results if r.status is MetricStatus.COMPUTED),
        per_sample=per, medians=medians, passed=passed,
        curves={k: list(v) for r in results for k, v in r.curves.items()},
        sanity_curve={k: list(v) for r in results for k, v in r.sanity_curve.items()},
        reasons=tuple(reasons), notes=tuple(r.note for r in results if r.note),
        thresholds=dict(context.thresholds),
        timings={r.metric: r.seconds for r in results if r.seconds is not None})


def _grade(context: MetricContext,
           results: list[MetricResult]) -> tuple[Verdict, dict[str, bool], list[str]]:
    """The verdict, each criterion's outcome, and the reasons (worst verdict first)."""
    passed: dict[str, bool] = {}
    failed: list[tuple[Verdict, str]] = []
    missing: list[str] = []
    for r in results:
        metric = get_metric(r.metric)
        if r.status is MetricStatus.FAILED and metric.graded:
            missing.append(f"{r.metric} could not be computed")
        if r.status is not MetricStatus.COMPUTED:
            continue
        for c in metric.criteria(r, context):
            if c.passed is not None:
                passed[c.name] = c.passed
            if not c.passed:
                failed.append((c.fails, c.reason))
    failed.sort(key=lambda vr: -vr[0].severity.rank)  # stable: registry order within a verdict
    reasons = [reason for _, reason in failed] + missing
    if not passed and not reasons:
        reasons.append("no graded metric could be computed")
    worst = failed[0][0] if failed else Verdict.TRUSTWORTHY
    if worst is Verdict.TRUSTWORTHY and reasons:
        worst = Verdict.DOUBTFUL
    return worst, passed, reasons
