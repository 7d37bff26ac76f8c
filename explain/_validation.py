"""Parameter validation in one place, so every message has the same form (scikit-learn style).

"The 'epochs' parameter of TrainConfig must be an int >= 1. Got 0 instead."
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any

from explain.errors import InvalidInputError, InvalidTypeError, UnknownNameError


def _where(owner: str | None) -> str:
    return f" of {owner}" if owner else ""


def check_int(value: Any, name: str, *, owner: str | None = None, min: int | None = None,
              max: int | None = None) -> int:
    """Return ``value`` as an int, or raise naming the parameter, the constraint and the value."""
    bounds = []
    if min is not None:
        bounds.append(f">= {min}")
    if max is not None:
        bounds.append(f"<= {max}")
    want = "an int" + (" " + " and ".join(bounds) if bounds else "")
    if isinstance(value, bool) or not isinstance(value, (int,)) and not _is_integral(value):
        raise InvalidTypeError(
            f"The {name!r} parameter{_where(owner)} must be {want}. Got {value!r} "
            f"({type(value).__name__}) instead.")
    value = int(value)
    if (min is not None and value < min) or (max is not None and value > max):
        raise InvalidInputError(
            f"The {name!r} parameter{_where(owner)} must be {want}. Got {value!r} instead.")
    return value


def _is_integral(value: Any) -> bool:
    try:
        import numpy as np
        return isinstance(value, np.integer)
    except ImportError:  # pragma: no cover
        return False


def check_float(value: Any, name: str, *, owner: str | None = None, min: float | None = None,
                max: float | None = None, min_inclusive: bool = True,
                allow_none: bool = False) -> float | None:
    """Return ``value`` as a finite float within bounds, or raise a clear error."""
    if value is None and allow_none:
        return None
    bounds = []
    if min is not None:
        bounds.append(f"{'>=' if min_inclusive else '>'} {min}")
    if max is not None:
        bounds.append(f"<= {max}")
    want = "a finite number" + (" " + " and ".join(bounds) if bounds else "")
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not _is_number(value):
        raise InvalidTypeError(
            f"The {name!r} parameter{_where(owner)} must be {want}. Got {value!r} "
            f"({type(value).__name__}) instead.")
    value = float(value)
    bad = not math.isfinite(value)
    if min is not None:
        bad = bad or (value < min if min_inclusive else value <= min)
    if max is not None:
        bad = bad or value > max
    if bad:
        raise InvalidInputError(
            f"The {name!r} parameter{_where(owner)} must be {want}. Got {value!r} instead.")
    return value


def check_bool(value: Any, name: str, *, owner: str | None = None) -> bool:
    """Return ``value`` if it is a bool (numpy bools included), or raise a clear error."""
    if not isinstance(value, bool) and not _is_numpy_bool(value):
        raise InvalidTypeError(
            f"The {name!r} parameter{_where(owner)} must be a bool. Got {value!r} "
            f"({type(value).__name__}) instead.")
    return bool(value)


def _is_numpy_bool(value: Any) -> bool:
    try:
        import numpy as np
        return isinstance(value, np.bool_)
    except ImportError:  # pragma: no cover
        return False


def _is_number(value: Any) -> bool:
    try:
        import numpy as np
        return isinstance(value, (np.integer, np.floating))
    except ImportError:  # pragma: no cover
        return False


def check_choice(value: Any, name: str, choices: Iterable[str], *,
                 owner: str | None = None) -> str:
    """Return ``value`` if it is one of ``choices``; otherwise list the valid ones."""
    choices = list(choices)
    if value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise InvalidInputError(
            f"The {name!r} parameter{_where(owner)} must be one of "
            f"{', '.join(map(repr, choices))}. Got {value!r} instead.{hint}")
    return value


def unknown_name(kind: str, name: Any, known: Iterable[str]) -> UnknownNameError:
    """Build the error for an unknown registry name, listing the closest valid names."""
    known = sorted(known)
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.4)
    hint = (f" Did you mean {', '.join(map(repr, close))}?" if close
            else f" Valid names: {', '.join(map(repr, known))}.")
    return UnknownNameError(f"Unknown {kind} {name!r}.{hint}")
