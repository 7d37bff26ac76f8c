"""The training history: what :class:`~explain.monitor.TrainingMonitor` records, as plain data.

The layout is a contract every part of deepscope codes against (checks, figures, report, dashboard):

``epochs``      dict[str, list[float | None]], columnar, one value per logged epoch; keys at least
                ``"epoch"`` (1-based), ``"train_loss"``, ``"val_loss"``, ``"train_acc"``,
                ``"val_acc"``, ``"lr"``, ``"seconds"`` (``None`` where not logged); extra keys
                given to :meth:`History.log_epoch` become extra columns.
``steps``       list[int], the 0-based global step index of each sampled record.
``step_loss``   list[float | None], the loss at each sampled step (``None`` if not given).
``layers``      dict[layer name, dict[metric, list[float | None]]], one value per sampled step;
                layers ordered input -> output; metrics in :data:`LAYER_METRICS`.
``layer_info``  dict[layer name, dict]: ``"type"``, ``"activation"``, ``"num_params"``, ``"index"``.
``between``     dict[str, list[float | None]], one value per sampled record: what happened on
                every step since the previous record (this one's step included), tracked on the
                device at every step: ``"count"`` (steps), ``"grad_norm_max"`` and
                ``"grad_norm_mean"`` (the global gradient norm, before any clipping),
                ``"loss_max"`` and ``"loss_mean"`` (finite losses given to ``step(loss=)``),
                ``"update_ratio_max"`` (the largest layer's ``| ||W_t|| - ||W_t-1|| | /
                ||W_t-1||``, a lower bound of its update-to-weight ratio). Empty in histories
                recorded before it existed; ``None`` where a value was not tracked. The steps
                after the last record are in ``meta["between_tail"]`` (the same keys and
                ``"step"``, the last step), written at close.
``temporal``    list[{"step": int, "grad_norm": [float per time step]}] (sequence models):
                ``||d loss_i / d x_i[t]||`` averaged over the batch's sequences.
``nonfinite``   dict[str, int]: counts for ``"loss"``, ``"grad"``, ``"weight"``, ``"activation"``.
``meta``        dict: model class, parameter count, sampling interval, device, amp,
                ``"epoch_end_steps"`` (the global step count at each ``log_epoch``),
                ``"temporal_source"`` (``"training step"`` or ``"extra pass"``),
                ``"clipping"`` (whether the loop clipped gradients: a gradient norm at
                ``optimizer.step()`` below the one backward produced, at
                ``"clipped_records"`` records), ``"between_tail"`` (see ``between``),
                ``"monitor_seconds"`` (the monitor's measured work), ...

JSON is the canonical form (:meth:`History.to_dict`): strict JSON through
:mod:`explain._core.jsoncodec`, where every non-finite number is written as ``null`` and its JSON
pointer listed under ``"nonfinite_values"``, so :meth:`History.from_dict` restores ``inf``,
``-inf`` and ``nan`` exactly (histories written with the older list-of-keys paths still load).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from explain._core import jsoncodec
from explain.errors import CorruptRunError

__all__ = ["History", "SCHEMA_VERSION", "EPOCH_KEYS", "LAYER_METRICS", "NONFINITE_KINDS"]

SCHEMA_VERSION = 1
EPOCH_KEYS = ("epoch", "train_loss", "val_loss", "train_acc", "val_acc", "lr", "seconds")
LAYER_METRICS = ("grad_norm", "weight_norm", "update_ratio", "act_mean", "act_std", "frac_zero",
                 "frac_saturated", "frac_dead")
NONFINITE_KINDS = ("loss", "grad", "weight", "activation")
_FIELDS = ("epochs", "steps", "step_loss", "layers", "layer_info", "temporal", "nonfinite", "meta",
           "between")
_OPTIONAL = {"between": dict}  # fields added later: histories without them still load
_FIX = "The history is damaged or was not written by deepscope; record it again with TrainingMonitor."


def _empty_epochs() -> dict[str, list[float | None]]:
    return {k: [] for k in EPOCH_KEYS}


def _empty_nonfinite() -> dict[str, int]:
    return {k: 0 for k in NONFINITE_KINDS}


@dataclass(eq=False)
class History:
    """Everything recorded during one training run (see the module docstring for the layout).

    Equality compares the canonical JSON form, so ``nan == nan`` holds between histories and a
    JSON round trip gives an equal history.

    Examples
    --------
    >>> h = History()
    >>> h.log_epoch(train_loss=0.5, val_loss=float("inf"), my_metric=3)
    >>> h.epochs["epoch"], h.epochs["val_loss"], h.epochs["my_metric"]
    ([1], [inf], [3])
    >>> History.from_json(h.to_json()) == h
    True
    """

    epochs: dict[str, list[Any]] = field(default_factory=_empty_epochs)
    steps: list[int] = field(default_factory=list)
    step_loss: list[float | None] = field(default_factory=list)
    layers: dict[str, dict[str, list[float | None]]] = field(default_factory=dict)
    layer_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    temporal: list[dict[str, Any]] = field(default_factory=list)
    nonfinite: dict[str, int] = field(default_factory=_empty_nonfinite)
    meta: dict[str, Any] = field(default_factory=dict)
    between: dict[str, list[float | None]] = field(default_factory=dict)

    __hash__ = None  # type: ignore[assignment]  # mutable

    # ------------------------------------------------------------------ recording
    @property
    def num_epochs(self) -> int:
        """Number of logged epochs."""
        return len(self.epochs.get("epoch", []))

    def monitor_cost(self) -> str | None:
        """One sentence on what the monitor sampled and what that cost, or None before any
        record (``meta["monitor_seconds"]`` is written when the monitor closes)."""
        spent, total = self.meta.get("monitor_seconds"), self.meta.get("total_steps")
        if not self.steps or not isinstance(spent, (int, float)) or not total:
            return None
        text = (f"The monitor sampled {len(self.steps)} of {total} steps; their extra work took "
                f"{spent:.2g} s")
        seconds = [v for v in self.epochs.get("seconds", []) if isinstance(v, (int, float))]
        if seconds and len(seconds) == self.num_epochs and sum(seconds) > 0:
            text += f", {spent / sum(seconds):.1%} of the {sum(seconds):.3g} s of training"
        return text + "."

    def log_epoch(self, **metrics: Any) -> None:
        """Append one row to :attr:`epochs`; unknown keys become new columns.

        ``epoch`` defaults to the next 1-based epoch number; missing columns get ``None``.
        Values must be numbers (or 0-d tensors / numpy scalars) or ``None``.
        """
        n = self.num_epochs
        row = {k: _number(k, v) for k, v in metrics.items()}
        if row.get("epoch") is None:
            row["epoch"] = n + 1
        for key in row:
            if key not in self.epochs:
                self.epochs[key] = [None] * n
        for key, column in self.epochs.items():
            column.append(row.get(key))

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """The canonical, strict-JSON form (a deep copy): non-finite numbers become ``None``.

        Their locations are listed under ``"nonfinite_values"`` as
        ``{"path": "<JSON pointer>", "value": "inf"}`` (the one convention of
        :mod:`explain._core.jsoncodec`).
        """
        body = {"schema": SCHEMA_VERSION, **{name: getattr(self, name) for name in _FIELDS}}
        return jsoncodec.encode(body, always=True)

    @classmethod
    def from_dict(cls, d: Any) -> History:
        """Rebuild a history from :meth:`to_dict` output, validating it.

        Histories written before the shared codec (``"path"`` as a list of keys) still load.

        Raises
        ------
        CorruptRunError
            If ``d`` is not a history of a known schema version, or a field has the wrong type
            or length.
        """
        if not isinstance(d, dict):
            raise CorruptRunError(
                f"History.from_dict expects a dict. Got {type(d).__name__} instead. {_FIX}")
        schema = d.get("schema")
        if schema is None:
            raise CorruptRunError(f"History.from_dict: the 'schema' field is missing. {_FIX}")
        if isinstance(schema, bool) or not isinstance(schema, int) or schema > SCHEMA_VERSION \
                or schema < 1:
            raise CorruptRunError(
                f"History.from_dict: 'schema' must be an int between 1 and {SCHEMA_VERSION}. "
                f"Got {schema!r} instead. A newer schema needs a newer deepscope "
                f"(pip install -U deepscope).")
        missing = [k for k in _FIELDS if k not in d and k not in _OPTIONAL]
        if missing:
            raise CorruptRunError(
                f"History.from_dict: the field(s) {', '.join(map(repr, missing))} are missing. "
                f"{_FIX}")
        data = copy.deepcopy({k: d[k] if k in d else _OPTIONAL[k]() for k in _FIELDS})
        jsoncodec.restore_nonfinite(data, d.get(jsoncodec.NONFINITE_KEY, []),
                                    what="History.from_dict")
        _validate(data)
        epochs = data["epochs"]
        for key in EPOCH_KEYS:  # tolerate histories without some standard columns
            epochs.setdefault(key, [None] * len(next(iter(epochs.values()), [])))
        for kind in NONFINITE_KINDS:
            data["nonfinite"].setdefault(kind, 0)
        return cls(**data)

    def to_json(self, indent: int | None = None) -> str:
        """Strict JSON text (``allow_nan=False``) of :meth:`to_dict`."""
        return jsoncodec.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> History:
        """Parse :meth:`to_json` output; raises :class:`CorruptRunError` on invalid JSON."""
        return cls.from_dict(jsoncodec.loads(text, what="History.from_json: the text"))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, History):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return (f"History(epochs={self.num_epochs}, steps={len(self.steps)}, "
                f"layers={len(self.layers)}, temporal={len(self.temporal)}, "
                f"nonfinite={self.nonfinite})")


# ---------------------------------------------------------------------- helpers
def _number(key: str, value: Any) -> float | int | None:
    if value is None:
        return None
    if hasattr(value, "item") and callable(value.item):  # 0-d tensor, numpy scalar
        try:
            value = value.item()
        except (ValueError, RuntimeError):
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        from explain.errors import InvalidTypeError
        raise InvalidTypeError(
            f"The {key!r} parameter of History.log_epoch must be a number or None. "
            f"Got {value!r} ({type(value).__name__}) instead. Pass a float, e.g. loss.item().")
    return value


def _fail(what: str, want: str, got: Any) -> CorruptRunError:
    shown = got if isinstance(got, (int, float, str)) else type(got).__name__
    return CorruptRunError(f"History.from_dict: {what} must be {want}. Got {shown!r} instead. "
                           f"{_FIX}")


def _is_num(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _check_numbers(values: Any, what: str, length: int | None = None) -> None:
    if not isinstance(values, list):
        raise _fail(what, "a list", values)
    if length is not None and len(values) != length:
        raise _fail(f"{what} (one value per entry of 'steps')", f"a list of length {length}",
                    len(values))
    for v in values:
        if not _is_num(v):
            raise _fail(f"every value of {what}", "a number or null", v)


def _validate(d: dict[str, Any]) -> None:
    for name, kind in (("epochs", dict), ("layers", dict), ("layer_info", dict),
                       ("nonfinite", dict), ("meta", dict), ("steps", list),
                       ("step_loss", list), ("temporal", list), ("between", dict)):
        if not isinstance(d[name], kind):
            raise _fail(f"'{name}'", f"a {kind.__name__}", d[name])
    lengths = {len(c) if isinstance(c, list) else -1 for c in d["epochs"].values()}
    for key, column in d["epochs"].items():
        _check_numbers(column, f"'epochs.{key}'")
    if len(lengths) > 1:
        raise _fail("every 'epochs' column", "of the same length", sorted(lengths))
    n = len(d["steps"])
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in d["steps"]):
        raise _fail("'steps'", "a list of ints", d["steps"])
    _check_numbers(d["step_loss"], "'step_loss'", n)
    for layer, metrics in d["layers"].items():
        if not isinstance(metrics, dict):
            raise _fail(f"'layers.{layer}'", "a dict of metric -> list", metrics)
        for metric, values in metrics.items():
            _check_numbers(values, f"'layers.{layer}.{metric}'", n)
    for key, values in d["between"].items():
        _check_numbers(values, f"'between.{key}'", n)
    for layer, info in d["layer_info"].items():
        if not isinstance(info, dict):
            raise _fail(f"'layer_info.{layer}'", "a dict", info)
    for i, rec in enumerate(d["temporal"]):
        if not isinstance(rec, dict) or not isinstance(rec.get("step"), int):
            raise _fail(f"'temporal[{i}]'", "a dict with an int 'step'", rec)
        _check_numbers(rec.get("grad_norm"), f"'temporal[{i}].grad_norm'")
    for kind, count in d["nonfinite"].items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise _fail(f"'nonfinite.{kind}'", "an int >= 0", count)
