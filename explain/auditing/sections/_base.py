"""The base of every report section and the JSON helpers the section types share."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar

import torch

from explain._core.jsoncodec import to_json_value
from explain.errors import CorruptRunError

__all__ = ["Section", "ByValue", "compact", "tensor_of", "mapping", "opt_float", "opt_int"]

S = TypeVar("S", bound="Section")


class ByValue:
    """Equality by the JSON form, for frozen values that hold tensors (``==`` on a tensor is
    element-wise, so the dataclass-generated ``__eq__`` cannot compare them)."""

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.to_dict() == other.to_dict()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False, kw_only=True)
class Section(ByValue):
    """One section of a :class:`explain.Report`: ``available`` and, when it is not, ``reason``
    (what is missing and how to get it).

    A new section is one subclass with a unique :attr:`name` (its key in the JSON), a
    :attr:`title` (its heading) and its fields, added to :data:`explain.auditing.sections.SECTIONS`.
    :meth:`to_dict` writes every field as JSON values; subclasses with nested typed values
    override :meth:`_read` to rebuild them.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    available: bool = True
    reason: str = ""

    @classmethod
    def unavailable(cls: type[S], reason: str) -> S:
        """The section when it could not be computed, saying why and how to get it."""
        return cls(available=False, reason=reason)

    def to_dict(self) -> dict[str, Any]:
        """JSON values (non-finite numbers kept; :meth:`explain.Report.to_dict` encodes them)."""
        return {f.name: to_json_value(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls: type[S], d: Any) -> S:
        """Rebuild the section from :meth:`to_dict` output (missing fields take defaults)."""
        d = mapping(d, f"Report section {cls.name!r}")
        try:
            return cls(available=bool(d.get("available", False)),
                       reason=str(d.get("reason") or ""), **cls._read(d))
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise CorruptRunError(
                f"Report section {cls.name!r} is malformed ({type(exc).__name__}: {exc}). "
                "Re-create the report with explain.audit(...).") from exc

    @classmethod
    def _read(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        """The constructor arguments other than ``available`` and ``reason`` from ``d``."""
        return {f.name: d[f.name] for f in fields(cls)
                if f.name not in ("available", "reason") and f.name in d}


def mapping(d: Any, what: str) -> Mapping[str, Any]:
    """``d`` if it is a mapping, else a :class:`explain.CorruptRunError` naming ``what``."""
    if not isinstance(d, Mapping):
        raise CorruptRunError(f"{what} must be a JSON object. Got {type(d).__name__} instead. "
                              "Re-create the report with explain.audit(...).")
    return d


def compact(t: torch.Tensor) -> Any:
    """Nested lists with 4 significant digits (keeps the JSON small; figures need no more).
    Integer tensors (token ids) stay exact integers."""
    if not t.is_floating_point():
        return t.tolist()
    flat = [float(f"{v:.4g}") if math.isfinite(v) else v for v in t.double().flatten().tolist()]
    out: Any = flat
    for size in reversed(list(t.shape[1:])):
        out = [out[i:i + size] for i in range(0, len(out), size)]
    return out if t.ndim else flat[0]


def tensor_of(value: Any) -> torch.Tensor | None:
    """A tensor from JSON lists: int64 when every number is an integer, else float64."""
    if value is None:
        return None
    t = torch.tensor(value)
    return torch.tensor(value, dtype=torch.float64) if t.is_floating_point() else t


def opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def opt_int(v: Any) -> int | None:
    return None if v is None else int(v)
