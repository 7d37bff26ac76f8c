"""The HTML report of an audio model: each explained clip is embedded as an offline
``<audio>`` player (``data:`` WAV allowed by the CSP, nothing else), next to its figure; and it
plays in headless Chromium without console errors."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

import explain
from explain.auditing.sections import ExplanationsSection
from tests.fixtures.audio import N_SAMPLES, SAMPLE_RATE, spectrogram_cnn

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).resolve().parents[3] / ".deepscope-test"
SOURCE = re.compile(r'<audio controls preload="metadata" src="data:audio/wav;base64,'
                    r'([A-Za-z0-9+/=]+)"></audio>')


@pytest.fixture(scope="module")
def report():
    model, data, pcm = spectrogram_cnn()
    return explain.audit(model, data, samples=2, waveforms=pcm, sample_rate=SAMPLE_RATE,
                         checks=["non-finite"], trust_metrics=("faithfulness",))


def test_html_embeds_each_clip_as_an_offline_audio_source(report):
    # Act
    html = report.render("html")
    # Assert: one player per explained sample, its bytes the sample's own WAV
    sec = report.section(ExplanationsSection)
    sources = [base64.b64decode(s) for s in SOURCE.findall(html)]
    assert sources == [s.audio for s in sec.samples] and len(sources) == 2
    assert "media-src data:" in html and "default-src 'none'" in html
    assert "<h3>Explained clips</h3>" in html
    # labels are escaped (a class name '<b>high</b>')
    assert "&lt;b&gt;high&lt;/b&gt;" in html and "true <b>high</b>" not in html


def test_a_report_without_waveforms_says_there_is_no_clip():
    model, data, _ = spectrogram_cnn(epochs=1)
    html = explain.audit(model, data, samples=1, checks=["non-finite"],
                         trust_metrics=("faithfulness",)).render("html")
    assert "<audio" not in html
    assert html.count("No clip: the audit was given no waveforms.") == 1


@pytest.mark.browser
def test_the_report_plays_its_clips_in_chromium_without_errors(report, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    # Arrange
    path = report.save(tmp_path / "report.html")
    errors, requests = [], []
    # Act
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri(), wait_until="load")
            page.wait_for_function("[...document.querySelectorAll('audio')].every("
                                   "a => a.readyState >= 1)", timeout=15_000)
            players = page.eval_on_selector_all("audio", "els => els.map(a => ["
                                                "a.src.slice(0, 22), a.duration, a.error])")
            page.locator(".clip").first.scroll_into_view_if_needed()
            page.wait_for_timeout(300)
            SHOTS.mkdir(exist_ok=True)
            (SHOTS / "report_audio.png").write_bytes(page.screenshot())
        finally:
            browser.close()
    # Assert: both players decoded their WAV (duration of the clip), nothing was fetched
    assert errors == []
    assert [u for u in requests if not u.startswith(("file:", "data:", "blob:"))] == []
    assert [(src, round(d, 3), err) for src, d, err in players] == \
        [("data:audio/wav;base64,", N_SAMPLES / SAMPLE_RATE, None)] * 2
