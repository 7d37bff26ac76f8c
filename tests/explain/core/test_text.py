"""explain._core.text.escape_markdown: data strings show as themselves in every Markdown."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from explain._core.text import escape_markdown


def test_markup_becomes_literal_text():
    assert escape_markdown("**bold** [link](http://x) <b>tag</b> `code`") == (
        "\\*\\*bold\\*\\* \\[link\\](http://x) &lt;b&gt;tag&lt;/b&gt; \\`code\\`")


@pytest.mark.parametrize(("raw", "escaped"), [
    ("a|b", "a\\|b"), ("$x$", "\\$x\\$"), ("~~x~~", "\\~\\~x\\~\\~"), ("# h", "\\# h"),
    ("a & b", "a &amp; b"), ("back\\slash", "back\\\\slash"), ("snake_case", "snake\\_case"),
    ("{x}", "\\{x\\}"), ("1 + 1!", "1 \\+ 1\\!"), ("one\r\ntwo\nthree", "one two three"),
    ("plain text, 0.5", "plain text, 0.5"), (3, "3"),
])
def test_each_special_character(raw, escaped):
    assert escape_markdown(raw) == escaped


@given(st.text(max_size=60))
def test_output_is_one_line_without_raw_html_or_unescaped_specials(text):
    out = escape_markdown(text)
    assert "\n" not in out and "\r" not in out and "<" not in out and ">" not in out
    # every special is preceded by a backslash (count the escapes pairwise from the left)
    i = 0
    while i < len(out):
        if out[i] == "\\":
            assert i + 1 < len(out), out
            i += 2
            continue
        assert out[i] not in "`*_{}[]#+!|$~", out  # parentheses need no escape: [ ] are
        i += 1
