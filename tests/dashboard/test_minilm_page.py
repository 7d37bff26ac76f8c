"""The dashboard on a minilm-rt run (reduced size): typed sentences go through the packaged
WordPiece tokenizer and word pieces are shown merged into words."""

from __future__ import annotations

import json

import pytest

from tests.dashboard.helpers import APP, NEEDS_MINILM, open_page, train_tiny_minilm

pytestmark = NEEDS_MINILM

RUN = "tiny-minilm"
MERGED = "Word pieces merged into words; their scores summed."


@pytest.fixture(scope="module")
def minilm_runs(tmp_path_factory):
    """minilm-rt with 1 encoder layer on 64 training snippets (16 tokens each)."""
    root = tmp_path_factory.mktemp("minilm") / "runs"
    train_tiny_minilm(root / RUN, monitor_every=1)
    return root


def _tokens(at) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith('<div class="deepscope-tokens"')]


def test_a_typed_sentence_is_read_by_the_wordpiece_tokenizer_and_shown_as_words(
        minilm_runs, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from zoo.models.minilm import load_tokenizer
    # Arrange
    monkeypatch.setenv("DEEPSCOPE_RUNS", str(minilm_runs))
    at = AppTest.from_file(str(APP), default_timeout=300).run()
    assert not at.exception, [e.value for e in at.exception]
    open_page(at, "explanations")
    # Act
    at.text_input(key="exp_sentence").set_value("an unwatchable, overlong mess").run()
    # Assert: the sentence's block holds whole words, never a '##' piece or an unknown word
    assert not at.exception, [e.value for e in at.exception]
    sentence = _tokens(at)[-1]
    assert ">unwatchable<" in sentence and ">overlong<" in sentence and "##" not in sentence
    assert ">[CLS]<" in sentence and ">[SEP]<" in sentence
    assert MERGED in [c.value for c in at.caption]
    assert not any("not in the vocabulary" in m.value for m in at.markdown)
    assert load_tokenizer().tokenize("unwatchable") == ["un", "##watch", "##able"]


@pytest.mark.slow  # the audit of a BERT run: ~25 s on 2 busy cores
def test_the_predictions_and_audit_pages_work_for_the_minilm_run(minilm_runs, monkeypatch):
    from streamlit.testing.v1 import AppTest

    import dashboard.cache as cache
    # Arrange: a quick audit (one explained sample per class, one sanity checkpoint)
    monkeypatch.setenv("DEEPSCOPE_RUNS", str(minilm_runs))
    monkeypatch.setattr(cache, "AUDIT_SAMPLES", 2)
    at = AppTest.from_file(str(APP), default_timeout=300).run()
    # Act
    open_page(at, "predictions")
    confusion = [json.loads(c.proto.spec) for c in at.get("plotly_chart")
                 if c.key == "fig_confusion"]
    open_page(at, "audit")
    at.button(key="audit_go").click().run(timeout=300)
    # Assert
    assert not at.exception and not at.error, [e.value for e in at.exception]
    rates = confusion[0]["data"][0]["z"]   # row rates of the 16 test snippets, 2 classes
    assert len(rates) == 2 and [round(sum(r), 6) for r in rates] == [1.0, 1.0]
    assert [b.label for b in at.download_button] == ["HTML", "JSON", "Markdown"]
    markdown = "\n".join(m.value for m in at.markdown)
    assert "Audit of minilm-rt" in markdown and "[CLS]" not in markdown.split("istakes")[-1]
