"""Collection rules for the doctests of the library (``--doctest-modules`` over explain/, zoo/,
deepscope/): modules that need an optional extra are skipped when that extra is not installed,
so a plain ``pip install deepscope`` still runs every other docstring example."""

from __future__ import annotations

import importlib.util

# module path (relative to the repository root) -> the import it needs
_OPTIONAL = {
    "explain/integrations/lightning.py": "lightning",
    "explain/integrations/transformers.py": "transformers",
    "zoo/models/minilm.py": "transformers",
}

collect_ignore = [path for path, module in _OPTIONAL.items()
                  if importlib.util.find_spec(module) is None]
