"""The check machinery: :class:`Check`, :class:`CheckContext`, the registry and condition helpers.

A check (deepchecks style) *computes* evidence from the training history and *grades* it with
conditions. ``Check.run(context) -> Finding`` never raises: a check that does not apply or lacks
its inputs becomes a SKIPPED finding that says why and what to record, and an exception inside the
check becomes an ERROR finding.

Checks read only attributes of the history (``history.epochs``, ``history.layers``, ...; see
:class:`explain.monitor.History`), so any object with that layout works.
"""

from __future__ import annotations

import math
import numbers
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from explain._registry import Registry
from explain.checks._timeline import (
    Onset,
    between_tail,
    epoch_of_step,
    first_step_of_epoch,
    first_step_where,
)
from explain.checks.thresholds import defaults
from explain.findings import Finding, Severity

__all__ = [
    "Check",
    "CheckContext",
    "MissingInput",
    "register_check",
    "get_check",
    "list_checks",
    "CHECKS",
    "finite",
    "median",
    "tail",
    "jsonable",
    "fmt",
    "pct",
    "loss_progress",
    "loss_change",
    "layer_series",
    "Onset",
    "epoch_of_step",
    "first_step_of_epoch",
    "first_step_where",
    "between_tail",
]

#: The check registry: id -> Check subclass, in registration order.
CHECKS: Registry[type[Check]] = Registry("check")


@dataclass
class CheckContext:
    """Everything a check may read.

    Parameters
    ----------
    history : the training history (:class:`explain.monitor.History` layout).
    model : the trained ``nn.Module`` (needed by data-free checks such as ``spectral``).
    thresholds : threshold overrides by name (see :mod:`explain.checks.thresholds`).
    learning_curve : ``[(n_train, val_score), ...]`` (see :func:`explain.checks.learning_curve`).
    calibration, shift, baseline, robustness : measured report sections
        (:mod:`explain.auditing.sections`) that the ``calibration``, ``distribution-shift``,
        ``shallow-baseline`` and ``robustness`` checks grade; ``None`` skips those checks.
    """

    history: Any = None
    model: Any = None
    thresholds: dict[str, float] = field(default_factory=dict)
    learning_curve: Sequence[tuple[float, float]] | None = None
    calibration: Any = None
    shift: Any = None
    baseline: Any = None
    robustness: Any = None

    def threshold(self, name: str) -> float:
        """Return the threshold ``name``: the override if given, else its documented default."""
        if name in self.thresholds:
            return self.thresholds[name]
        return defaults()[name]


class MissingInput(Exception):
    """Raised inside :meth:`Check.compute` when the check does not apply or an input is absent;
    becomes a SKIPPED finding.

    Parameters
    ----------
    summary : what is missing (one sentence).
    remedy : how to record it.
    """

    def __init__(self, summary: str, remedy: str) -> None:
        super().__init__(summary)
        self.summary = summary
        self.remedy = remedy


class Check:
    """Base class of every check: ``compute`` evidence, ``grade`` it, ``run`` both safely.

    Subclasses set ``id`` (via :func:`register_check`), ``title`` and ``thresholds`` (the names
    they read), and implement :meth:`compute` and :meth:`grade`; checks whose finding has a
    time implement :meth:`onset`. Every finding's evidence has ``first_step`` and
    ``first_epoch`` (None when not applicable, always None for PASS and SKIPPED).
    """

    id: str = ""
    title: str = ""
    thresholds: tuple[str, ...] = ()

    def compute(self, context: CheckContext) -> dict[str, Any]:
        """Return the evidence (JSON values); raise :class:`MissingInput` when inputs are absent."""
        raise NotImplementedError

    def grade(self, evidence: dict[str, Any], context: CheckContext) -> tuple[Severity, str, str]:
        """Return ``(severity, summary, remedy)`` for ``evidence``."""
        raise NotImplementedError

    def onset(self, evidence: dict[str, Any], context: CheckContext) -> Onset:
        """When what the evidence shows was first seen (called for INFO and worse)."""
        return Onset()

    def _when(self, evidence: dict[str, Any], severity: Severity,
              context: CheckContext) -> Onset:
        if severity < Severity.INFO or severity is Severity.ERROR:
            return Onset()
        found = self.onset(evidence, context)
        history = context.history
        step = found.step if found.step is not None else \
            first_step_of_epoch(history, found.epoch)
        epoch = found.epoch if found.epoch is not None else epoch_of_step(history, found.step)
        return Onset(step, epoch)

    def run(self, context: CheckContext) -> Finding:
        """Run the check; never raises.

        Returns
        -------
        Finding
            SKIPPED (with the reason) when the check does not apply or an input is missing,
            ERROR when the check itself failed.
        """
        try:
            evidence = self.compute(context)
            severity, summary, remedy = self.grade(evidence, context)
            when = self._when(evidence, severity, context)
            evidence = jsonable(evidence)
            evidence["thresholds"] = {n: context.threshold(n) for n in self.thresholds}
            evidence["first_step"], evidence["first_epoch"] = when.step, when.epoch
            return Finding(self.id, severity, summary, evidence, remedy)
        except MissingInput as missing:
            return Finding(self.id, Severity.SKIPPED, missing.summary,
                           {"missing": True, "first_step": None, "first_epoch": None},
                           missing.remedy)
        except Exception as exc:  # noqa: BLE001 - the point: one broken check must not sink all
            return Finding(
                self.id, Severity.ERROR,
                f"The {self.id} check could not run: {type(exc).__name__}: {exc}",
                {"error": type(exc).__name__, "message": str(exc), "first_step": None,
                 "first_epoch": None},
                "This is a bug in the check or an unexpected history layout; please report it "
                "with the history (history.to_dict()).")


def register_check(check_id: str) -> Callable[[type[Check]], type[Check]]:
    """Class decorator: register a :class:`Check` subclass under ``check_id``."""
    def deco(cls: type[Check]) -> type[Check]:
        cls.id = check_id
        return CHECKS.register(check_id)(cls)
    return deco


def get_check(check_id: str) -> Check:
    """Return a new instance of the check ``check_id`` (UnknownNameError lists valid ids)."""
    from explain.checks import _load_all

    _load_all()
    return CHECKS.get(check_id)()


def list_checks() -> list[str]:
    """Return the ids of every registered check, in registration order.

    Examples
    --------
    >>> from explain.checks import list_checks
    >>> "overfitting" in list_checks()
    True
    """
    from explain.checks import _load_all

    _load_all()
    return CHECKS.names()


# -- condition helpers ------------------------------------------------------------------------


def finite(values: Iterable[Any] | None) -> list[float]:
    """Return the finite numbers of ``values`` as floats (``None`` and NaN/inf dropped)."""
    out = []
    for v in values or ():
        if v is None or isinstance(v, bool):
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out.append(f)
    return out


def median(values: Iterable[Any] | None) -> float | None:
    """Median of the finite values, or ``None`` when there are none."""
    vals = finite(values)
    return statistics.median(vals) if vals else None


def tail(values: Sequence[Any], fraction: float) -> list[Any]:
    """The last ``fraction`` of ``values`` (at least one element when non-empty)."""
    n = len(values)
    k = max(1, int(math.ceil(n * fraction))) if n else 0
    return list(values[n - k:]) if k else []


def jsonable(x: Any) -> Any:
    """Convert ``x`` to plain JSON types (dicts, lists, numbers, strings, None).

    Non-finite numbers stay floats (``inf`` says more than a missing value: an overflowed
    norm is not an unknown one); :meth:`Finding.to_dict` writes them with the one non-finite
    convention of :mod:`explain._core.jsoncodec` (null plus a JSON pointer).
    """
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, numbers.Integral):
        return int(x)
    try:
        f = float(x)
    except (TypeError, ValueError):
        return str(x)
    return f


def fmt(x: float | None) -> str:
    """Format a number for a summary sentence: 3 significant digits (``1e-07``, ``0.0213``)."""
    if x is None:
        return "n/a"
    return f"{x:.3g}"


def pct(x: float | None) -> str:
    """Format a fraction as a percentage with no decimals (``0.234 -> '23%'``)."""
    if x is None:
        return "n/a"
    return f"{100 * x:.0f}%"


def loss_change(progress: float) -> str:
    """``"the loss fell 74%"`` or ``"the loss rose 5%"`` for a relative loss progress."""
    return f"the loss fell {pct(progress)}" if progress >= 0 else f"the loss rose {pct(-progress)}"


def loss_progress(history: Any) -> dict[str, Any] | None:
    """How much the training loss fell: ``{"start", "end", "progress"}`` or ``None``.

    Uses the sampled step losses (median of the first vs the last tenth) when there are at least
    4 and they reach the last epoch, otherwise the per-epoch training loss (first vs last
    epoch): with an adaptive interval the records can stop long before the end of training,
    and their last loss is then no end. ``progress`` is ``(start - end) / |start|`` (negative
    when the loss rose); ``diverged`` is true when a non-finite loss was counted.
    """
    steps = list(getattr(history, "step_loss", None) or [])
    vals = finite(steps)
    epochs = getattr(history, "epochs", None) or {}
    ends = list((getattr(history, "meta", None) or {}).get("epoch_end_steps") or [])
    recorded = list(getattr(history, "steps", None) or [])
    early = (len(finite(epochs.get("train_loss"))) >= 2 and len(ends) >= 2 and bool(recorded)
             and recorded[-1] < ends[-2])  # the last record is before the last epoch began
    if len(vals) >= 4 and not early:
        k = max(1, len(vals) // 10)
        start, end = statistics.median(vals[:k]), statistics.median(vals[-k:])
        source = "step_loss"
    else:
        vals = finite(epochs.get("train_loss"))
        if len(vals) < 2:
            return None
        start, end = vals[0], vals[-1]
        source = "train_loss"
    nonfinite = getattr(history, "nonfinite", None) or {}
    diverged = bool(nonfinite.get("loss", 0))
    progress = (start - end) / abs(start) if start else 0.0
    return {"start": start, "end": end, "progress": progress, "source": source,
            "diverged": diverged}


def layer_series(history: Any, metric: str,
                 skip: Callable[[str, dict[str, Any]], bool] | None = None) -> dict[str, list]:
    """Return ``{layer: values}`` for ``metric``, in layer order (input -> output).

    Layers without the metric, or for which ``skip(name, info)`` is true, are left out.
    """
    layers = getattr(history, "layers", None) or {}
    infos = getattr(history, "layer_info", None) or {}
    names = sorted(layers, key=lambda n: (infos.get(n, {}).get("index", math.inf),
                                          list(layers).index(n)))
    out = {}
    for name in names:
        series = layers[name].get(metric)
        if series is None or not finite(series):
            continue
        if skip is not None and skip(name, infos.get(name, {})):
            continue
        out[name] = list(series)
    return out
