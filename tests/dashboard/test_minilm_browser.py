"""The minilm-rt explanations page in headless Debian Chromium: a typed sentence goes through
the run folder's WordPiece tokenizer, and its prediction and token explanation render with word
pieces merged into words. Screenshot: ``$DEEPSCOPE_SCREENSHOTS`` if set, else the temp folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dashboard.helpers import NEEDS_MINILM, BrowserConsole, train_tiny_minilm
from tests.dashboard.test_browser import (
    ARGS,
    CHROMIUM,
    _no_errors,
    _settle,
    serve_dashboard,
)

pytestmark = NEEDS_MINILM

RUN = "tiny-minilm"
SENTENCE = "an unwatchable, overlong mess"


@pytest.fixture(scope="module")
def minilm_server(tmp_path_factory) -> Iterator[tuple[int, Path]]:
    """minilm-rt at reduced size (1 encoder layer, 64 snippets of 16 tokens), served by
    ``deepscope dashboard``; yields (port, runs folder)."""
    root = tmp_path_factory.mktemp("minilm-browser") / "runs"
    train_tiny_minilm(root / RUN, monitor=False)
    with serve_dashboard(root) as port:
        yield port, root


@pytest.mark.browser
@pytest.mark.slow  # a BERT run, a Streamlit server and Chromium: ~40 s on 2 busy cores
def test_a_typed_sentence_on_the_minilm_page_in_chromium(minilm_server, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    import torch

    import zoo
    # Arrange: what the server will compute, from the same run folder
    port, root = minilm_server
    run = zoo.load_run(root / RUN)
    ids = torch.tensor([run.tokenizer(SENTENCE)["input_ids"]])
    with torch.no_grad():
        probs = torch.softmax(run.model(ids), -1)[0]
    top = int(probs.argmax())
    expected = f"Prediction: {run.card.class_names[top]} ({float(probs[top]):.0%})"
    shots = Path(os.environ.get("DEEPSCOPE_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        console = BrowserConsole(page)
        try:
            page.goto(f"http://127.0.0.1:{port}/explanations", wait_until="domcontentloaded")
            box = page.get_by_label("Sentence", exact=True)
            box.wait_for(timeout=120_000)
            _settle(page, timeout=120)
            # Act
            box.fill(SENTENCE)
            box.press("Enter")
            _settle(page, timeout=120)
            page.get_by_text("Prediction:").last.wait_for(timeout=60_000)
            tokens = page.locator("div.deepscope-tokens").last
            tokens.wait_for(timeout=60_000)
            tokens.scroll_into_view_if_needed()
            page.screenshot(path=str(shots / "minilm-sentence.png"), full_page=True)
            # Assert
            text = _no_errors(page, "explanations")
            words = tokens.locator("span").all_inner_texts()
        finally:
            browser.close()
    assert console.unexpected() == [], console.lines
    assert expected in text   # markdown bold is rendered, so no asterisks
    assert [w.strip() for w in words] == ["[CLS]", "an", "unwatchable", ",", "overlong", "mess",
                                          "[SEP]"]
    assert "Word pieces merged into words; their scores summed." in text
    assert "##" not in " ".join(words)

