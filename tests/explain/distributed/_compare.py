"""Compare two report dictionaries: equal except wall times, floats within tolerance."""

from __future__ import annotations

import math
from typing import Any

#: Keys whose values are wall-clock measurements (they differ between any two runs).
TIMES = {"timings", "created", "seconds", "quality_seconds"}


def differences(a: Any, b: Any, path: str = "", rtol: float = 1e-4,
                atol: float = 1e-6) -> list[str]:
    """Where ``a`` and ``b`` differ (an empty list when they are equal), as JSON paths."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) - TIMES != set(b) - TIMES:
            return [f"{path}: keys {sorted(set(a) ^ set(b))}"]
        return [d for k in a if k not in TIMES
                for d in differences(a[k], b[k], f"{path}/{k}", rtol, atol)]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b))
                for d in differences(x, y, f"{path}/{i}", rtol, atol)]
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        same = math.isclose(a, b, rel_tol=rtol, abs_tol=atol) or (math.isnan(a) and math.isnan(b))
        return [] if same else [f"{path}: {a} != {b}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]
