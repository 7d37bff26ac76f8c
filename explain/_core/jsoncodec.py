"""The strict-JSON codec every stage uses.

One convention for non-finite numbers: a NaN or infinity is written as ``null`` and its location
is listed under ``"nonfinite_values"`` as ``{"path": <JSON pointer, RFC 6901>, "value": "nan" |
"inf" | "-inf"}``, so decoding restores it exactly. (History files written before this codec
used a list of keys as the path; :func:`restore_nonfinite` still reads them.)

Examples
--------
>>> doc = encode({"loss": [0.5, float("inf")]})
>>> doc
{'loss': [0.5, None], 'nonfinite_values': [{'path': '/loss/1', 'value': 'inf'}]}
>>> decode(doc)
{'loss': [0.5, inf]}
>>> loads(dumps(doc), what="example") == doc
True
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from typing import Any

from explain.errors import CorruptRunError

__all__ = ["NONFINITE_KEY", "to_json_value", "strip_nonfinite", "restore_nonfinite", "encode",
           "decode", "dumps", "loads"]

NONFINITE_KEY = "nonfinite_values"
_NAMES = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def to_json_value(value: Any) -> Any:
    """Plain JSON types from numpy / torch / tuples / enums / typed values (non-finite kept).

    Objects with ``to_dict()`` are converted through it; anything else unknown becomes ``str``.
    """
    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    if isinstance(value, enum.Enum):
        return to_json_value(value.value)
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return to_json_value(value.to_dict())
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays/scalars, tensors
        return to_json_value(value.tolist())
    if hasattr(value, "item") and callable(value.item):
        return to_json_value(value.item())
    return str(value)


def _pointer(parts: list[Any]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _name(f: float) -> str:
    return "nan" if math.isnan(f) else ("inf" if f > 0 else "-inf")


def strip_nonfinite(value: Any) -> tuple[Any, list[dict[str, str]]]:
    """A JSON-typed copy of ``value`` with non-finite floats as ``None``, and where they were."""
    found: list[dict[str, str]] = []

    def walk(v: Any, path: list[Any]) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            found.append({"path": _pointer(path), "value": _name(v)})
            return None
        if isinstance(v, dict):
            return {k: walk(x, [*path, k]) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x, [*path, i]) for i, x in enumerate(v)]
        return v

    return walk(to_json_value(value), []), found


def _parts(path: Any, what: str) -> list[str | int]:
    if isinstance(path, list) and path:          # the older History form: a list of keys
        return list(path)
    if isinstance(path, str) and path.startswith("/"):
        return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
    raise CorruptRunError(
        f"{what}: a 'nonfinite_values' path must be a JSON pointer such as '/loss/3'. Got "
        f"{path!r} instead. Re-create the file with deepscope.")


def restore_nonfinite(data: Any, entries: Any, *, what: str) -> None:
    """Put the non-finite values listed in ``entries`` back into ``data`` (in place).

    Raises :class:`explain.CorruptRunError` naming ``what`` when an entry is malformed or its
    path does not lead to a ``null``.
    """
    if not isinstance(entries, list):
        raise CorruptRunError(f"{what}: 'nonfinite_values' must be a list. Got "
                              f"{type(entries).__name__} instead. Re-create the file with deepscope.")
    for entry in entries:
        if not isinstance(entry, Mapping) or entry.get("value") not in _NAMES:
            raise CorruptRunError(
                f"{what}: each 'nonfinite_values' entry must be {{'path': ..., 'value': "
                f"'nan'|'inf'|'-inf'}}. Got {entry!r} instead. Re-create the file with deepscope.")
        parts = _parts(entry.get("path"), what)
        node: Any = data
        try:
            for p in parts[:-1]:
                node = node[int(p)] if isinstance(node, list) else node[p]
            last = int(parts[-1]) if isinstance(node, list) else parts[-1]
            if node[last] is not None:
                raise TypeError("not null")
            node[last] = _NAMES[entry["value"]]
        except (KeyError, IndexError, ValueError, TypeError):
            raise CorruptRunError(
                f"{what}: the 'nonfinite_values' path {entry.get('path')!r} does not point to a "
                "null value. Re-create the file with deepscope.") from None


def encode(value: Mapping[str, Any], *, always: bool = False) -> dict[str, Any]:
    """A strict-JSON dict of ``value`` with its ``"nonfinite_values"`` list.

    The list is added when it is not empty, or always with ``always=True`` (top-level
    documents: History, Report, run.json).
    """
    clean, found = strip_nonfinite(dict(value))
    if found or always:
        clean[NONFINITE_KEY] = found
    return clean


def decode(doc: Mapping[str, Any], *, what: str = "JSON document") -> dict[str, Any]:
    """The inverse of :func:`encode`: a deep copy with the non-finite values restored."""
    data = json.loads(json.dumps(dict(doc), allow_nan=True))  # deep copy of plain JSON values
    entries = data.pop(NONFINITE_KEY, None)
    if entries is not None:
        restore_nonfinite(data, entries, what=what)
    return data


def dumps(value: Any, *, indent: int | None = 1) -> str:
    """Strict JSON text (``allow_nan=False``; encode non-finite values first)."""
    return json.dumps(value, indent=indent, allow_nan=False, ensure_ascii=False)


def loads(text: str | bytes, *, what: str) -> Any:
    """Parse JSON text; invalid text raises :class:`explain.CorruptRunError` naming ``what``."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as exc:
        raise CorruptRunError(f"{what} is not valid JSON ({exc}). Re-create it with "
                              "deepscope.") from None
