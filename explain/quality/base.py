"""The trust-metric machinery: :class:`TrustMetric`, its context, its typed result, the registry.

A trust metric (built like a check, :mod:`explain.checks.base`) *computes* per-sample numbers
for one attribution and *grades* them with its own criteria. ``TrustMetric.run(context) ->
MetricResult`` never raises: a metric that does not apply returns a ``NOT_APPLICABLE`` result
saying why, and an exception inside it becomes a ``FAILED`` result whose note records the error,
so one broken metric never sinks the others.

A new metric is one new file in ``explain/quality/`` with a ``@register_metric("name")`` class;
:func:`explain.evaluate`, :func:`list_metrics` and the conformance tests pick it up.
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
from torch import nn

from explain._registry import Registry
from explain._validation import check_bool, check_float, check_int, unknown_name
from explain.card import Modality
from explain.quality._common import ExplainFn, median
from explain.quality.result import Verdict
from explain.quality.thresholds import THRESHOLDS, validate_thresholds

__all__ = [
    "TrustMetric",
    "MetricContext",
    "MetricResult",
    "MetricStatus",
    "MetricOption",
    "Criterion",
    "METRIC_REGISTRY",
    "register_metric",
    "get_metric",
    "list_metrics",
    "metric_options",
    "resolve_options",
]

#: The trust-metric registry: name -> TrustMetric subclass, in registration order.
METRIC_REGISTRY: Registry[type[TrustMetric]] = Registry("quality metric")


class MetricStatus(str, enum.Enum):
    """What became of one metric: computed, not applicable to this attribution, or failed."""

    COMPUTED = "computed"
    NOT_APPLICABLE = "not-applicable"
    FAILED = "failed"


@dataclass(frozen=True)
class MetricOption:
    """A size a metric reads (``steps``, ``sanity_checkpoints``, ...), validated in one place.

    Attributes
    ----------
    name : keyword accepted by :func:`explain.evaluate`.
    default : the value used when the caller gives none.
    meaning : what it sets, in one sentence.
    kind : ``"int"``, ``"float"`` or ``"bool"``.
    minimum : smallest valid value (``strict``: exclusive); ``optional``: ``None`` is allowed.
    """

    name: str
    default: Any
    meaning: str
    kind: Literal["int", "float", "bool"] = "int"
    minimum: float | None = None
    strict: bool = False
    optional: bool = False

    def validate(self, value: Any, *, owner: str = "evaluate") -> Any:
        """``value`` checked against the option's type and range (typed error otherwise)."""
        if value is None and self.optional:
            return None
        if self.kind == "bool":
            return check_bool(value, self.name, owner=owner)
        if self.kind == "int":
            low = None if self.minimum is None else int(self.minimum)
            return check_int(value, self.name, owner=owner, min=low)
        return check_float(value, self.name, owner=owner, min=self.minimum,
                           min_inclusive=not self.strict)


@dataclass(frozen=True)
class MetricContext:
    """Everything a trust metric may read; built once by :func:`explain.evaluate`.

    Attributes
    ----------
    model : the model, in eval mode (inside a guard that restores it afterwards).
    inputs : ``[n, *sample]`` the explained inputs, on the CPU.
    values : ``[n, *sample]`` float64 attribution maps, shaped like ``inputs``.
    target : ``[n]`` int64 class explained per sample.
    method : the attribution method's name.
    modality : decides the feature units and what may be perturbed.
    explain_fn : ``explain_fn(model, inputs, target) -> values`` recomputes the explanation.
    baselines, convergence_delta : the attribution's (``None`` when it has none).
    data_model : the same architecture trained on permuted labels (data-randomization sanity,
        :mod:`explain.quality.data_sanity`), in eval mode; ``None`` when none was given.
    seed : seed of every random draw.
    batch_size : rows per forward pass.
    pad_id : the padding id of token-id inputs (:attr:`explain.Attribution.pad_id`; 0, the zoo's
        convention, when the attribution has none): padding is never a feature, and a removed
        token becomes this id.
    options, thresholds : validated values (see :func:`resolve_options`).
    """

    model: nn.Module
    inputs: torch.Tensor
    values: torch.Tensor
    target: torch.Tensor
    method: str
    modality: Modality
    explain_fn: ExplainFn
    baselines: torch.Tensor | None = None
    convergence_delta: torch.Tensor | None = None
    data_model: nn.Module | None = None
    seed: int = 0
    batch_size: int = 256
    pad_id: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        """Samples evaluated."""
        return int(self.inputs.shape[0])

    def option(self, name: str) -> Any:
        """The option ``name``: the caller's value if given, else its documented default."""
        if name in self.options:
            return self.options[name]
        return metric_options()[name].default

    def threshold(self, name: str) -> float:
        """The threshold ``name``: the caller's value if given, else its documented default."""
        if name in self.thresholds:
            return self.thresholds[name]
        return THRESHOLDS[name].default


Series = tuple[float | None, ...]


@dataclass(frozen=True)
class MetricResult:
    """What one metric produced for one attribution.

    Attributes
    ----------
    metric : the metric's registered name.
    status : a :class:`MetricStatus`.
    per_sample : series name -> one value per sample (``None`` where undefined).
    curves : mean curves (faithfulness: fraction, deletion, insertion, random orders).
    sanity_curve : ``layer``, ``correlation`` and ``layers`` of the randomization cascade.
    note : why the metric did not apply or how it failed (``"name: ..."``), else ``""``.
    seconds : time spent (``None`` when it did not run).
    """

    metric: str
    status: MetricStatus = MetricStatus.COMPUTED
    per_sample: Mapping[str, Series] = field(default_factory=dict)
    curves: Mapping[str, Series] = field(default_factory=dict)
    sanity_curve: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    note: str = ""
    seconds: float | None = None

    def median(self, series: str) -> float | None:
        """Median of the finite values of ``series`` (``None`` when there are none)."""
        v = median(self.per_sample.get(series, ()))
        return v if math.isfinite(v) else None


@dataclass(frozen=True)
class Criterion:
    """One graded condition of a metric (deepchecks' condition result).

    Attributes
    ----------
    name : key in :attr:`explain.Quality.passed` (``"deletion"``, ``"sanity"``, ...).
    passed : whether it holds; ``None`` when undefined (it then only adds its reason).
    reason : the sentence given when it does not hold.
    fails : the verdict it implies when it does not hold.
    """

    name: str
    passed: bool | None
    reason: str
    fails: Verdict = Verdict.DOUBTFUL


class TrustMetric:
    """Base class of every trust metric: ``compute`` numbers, grade them by ``criteria``.

    Subclasses are registered with :func:`register_metric` (which sets ``name``), declare the
    ``options`` and ``thresholds`` they read, and implement :meth:`compute`; graded metrics
    implement :meth:`criteria`, and :meth:`describe` gives their clause of the summary. Callers
    use :meth:`run`, which never raises. An ``opt_in`` metric needs an input the caller must
    build (a retrained model): :func:`explain.evaluate` runs it only when that input is given
    or the metric is named.
    """

    name: str = ""
    title: str = ""
    graded: bool = True
    opt_in: bool = False
    options: tuple[MetricOption, ...] = ()
    thresholds: tuple[str, ...] = ()

    def not_applicable(self, context: MetricContext) -> str:
        """Why the metric does not apply to ``context`` (``""`` when it does)."""
        return ""

    def compute(self, context: MetricContext) -> MetricResult:
        """Return the metric's numbers (may raise; :meth:`run` records the error)."""
        raise NotImplementedError

    def criteria(self, result: MetricResult, context: MetricContext) -> tuple[Criterion, ...]:
        """The graded conditions of a computed ``result`` (none for report-only metrics)."""
        return ()

    def describe(self, result: MetricResult) -> str:
        """This metric's clause of the summary sentence (``""`` when it has no number)."""
        return ""

    def run(self, context: MetricContext) -> MetricResult:
        """Compute the metric; never raises.

        Returns
        -------
        MetricResult
            ``NOT_APPLICABLE`` with a note when the metric does not apply, ``FAILED`` with the
            error in its note when it raised, else ``COMPUTED``; timed unless not applicable.
        """
        why = self.not_applicable(context)
        if why:
            return MetricResult(self.name, MetricStatus.NOT_APPLICABLE, note=f"{self.name}: {why}")
        start = time.perf_counter()
        try:
            result = self.compute(context)
        except Exception as exc:  # noqa: BLE001 - the point: one broken metric must not sink all
            return MetricResult(self.name, MetricStatus.FAILED,
                                note=f"{self.name}: could not run ({type(exc).__name__}: {exc})",
                                seconds=round(time.perf_counter() - start, 4))
        return replace(result, metric=self.name, status=MetricStatus.COMPUTED,
                       seconds=round(time.perf_counter() - start, 4))


def register_metric(name: str) -> Callable[[type[TrustMetric]], type[TrustMetric]]:
    """Class decorator: register a :class:`TrustMetric` subclass under ``name``."""
    def deco(cls: type[TrustMetric]) -> type[TrustMetric]:
        cls.name = name
        return METRIC_REGISTRY.register(name)(cls)
    return deco


def get_metric(name: str) -> TrustMetric:
    """Return a new instance of the metric ``name`` (UnknownNameError lists valid names)."""
    from explain.quality import _load_all

    _load_all()
    return METRIC_REGISTRY.get(name)()


def list_metrics() -> list[str]:
    """Return the names of every registered trust metric, in the order they are computed.

    Examples
    --------
    >>> from explain.quality import list_metrics
    >>> list_metrics()[:3]
    ['completeness', 'faithfulness', 'sanity']
    """
    from explain.quality import _load_all

    _load_all()
    return METRIC_REGISTRY.names()


def metric_options() -> dict[str, MetricOption]:
    """Every option of every registered metric, by name."""
    return {o.name: o for name in list_metrics() for o in METRIC_REGISTRY.get(name).options}


def resolve_options(overrides: Mapping[str, Any], *,
                    owner: str = "evaluate") -> tuple[dict[str, Any], dict[str, float]]:
    """Split keyword ``overrides`` into validated metric options and thresholds.

    Returns ``(options, thresholds)``: every option and every threshold, defaults filled in.

    Raises
    ------
    UnknownNameError
        A keyword that is neither a metric option nor a threshold (closest names listed).
    InvalidInputError, InvalidTypeError
        A value of the wrong type or out of range.
    """
    known = metric_options()
    options = {name: o.default for name, o in known.items()}
    for name, value in overrides.items():
        if name in known:
            options[name] = known[name].validate(value, owner=owner)
        elif name not in THRESHOLDS:
            raise unknown_name(f"{owner} option", name, [*known, *THRESHOLDS])
    limits = validate_thresholds({k: v for k, v in overrides.items() if k in THRESHOLDS},
                                 owner=owner)
    return options, limits
