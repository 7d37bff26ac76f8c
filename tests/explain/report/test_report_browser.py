"""The HTML report in a real browser (headless Chromium): offline, plots drawn, XSS inert."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from explain.auditing import audit
from tests.fixtures.audit import XSS, synthetic_history, tiny_data, trained_mlp

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).resolve().parents[3] / ".deepscope-test"


@pytest.mark.browser
def test_html_report_renders_offline_with_plots_and_no_script_injection(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    from explain.monitor import History
    # Arrange: a report with an XSS class name, every training figure and explanations
    model, _ = trained_mlp(monitor=False)
    report = audit(model, tiny_data(), history=History(**synthetic_history()),
                   class_names=["a", XSS, "c"], samples=3, methods=["saliency"],
                   trust_metrics=("faithfulness",), learning_curve=[(30, 0.6), (90, 0.8)],
                   checks=["non-finite", "overfitting", "vanishing-gradients"])
    page_path = report.save(tmp_path / "report.html")
    errors, dialogs, requests = [], [], []
    # Act
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_path.as_uri(), wait_until="load")
            page.wait_for_function(
                "document.querySelectorAll('.js-plotly-plot .main-svg').length >= 8",
                timeout=15_000)
            plots = page.eval_on_selector_all(
                ".js-plotly-plot", "els => els.filter(e => e.querySelector('svg')).length")
            text = page.inner_text("body")
            SHOTS.mkdir(exist_ok=True)
            png = page.screenshot(full_page=False)
            (SHOTS / "report_top.png").write_bytes(png)
            page.locator("#performance").scroll_into_view_if_needed()
            (SHOTS / "report_performance.png").write_bytes(page.screenshot())
        finally:
            browser.close()
    # Assert
    assert errors == [] and dialogs == []
    assert [u for u in requests if not u.startswith(("file:", "data:", "blob:"))] == []
    assert plots >= 8
    assert XSS in text  # shown as text, not run
    assert "Not available" not in text.split("Explanations")[1].split("Data sufficiency")[0]
    from PIL import Image
    img = Image.open(io.BytesIO(png)).convert("L")
    lo, hi = img.getextrema()
    assert hi - lo > 100 and sum(c > 0 for c in img.histogram()) > 20  # not a blank page
