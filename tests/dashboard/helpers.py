"""What the dashboard tests share besides fixtures: the app's path, the run's id, page helpers."""

from __future__ import annotations

from pathlib import Path

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
