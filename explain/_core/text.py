"""Text helpers several renderers share: the one Markdown escaper.

Data strings (class names, check summaries, remedies, file names, typed sentences) reach three
Markdown renderers: the Markdown report (GitHub / CommonMark), the dashboard (Streamlit's
``st.markdown``, CommonMark plus ``$`` maths and ``~`` strikethrough) and the command line.
:func:`escape_markdown` makes such a string show as the literal text in all of them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["escape_markdown"]

#: ASCII punctuation with a meaning in CommonMark, GitHub tables or Streamlit Markdown
#: (backslash first, so the escapes added later are not escaped again). Parentheses are left
#: as they are: they only form a link right after a ``]``, and brackets are always escaped.
_SPECIALS = "\\`*_{}[]#+!|$~"
#: HTML-significant characters, written as entities (raw HTML must never render).
_ENTITIES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"))


def escape_markdown(text: Any) -> str:
    r"""``text`` as Markdown that renders as exactly that text, on one line.

    ``&``, ``<`` and ``>`` become HTML entities; the Markdown specials ``\ ` * _ { } [ ] #
    + ! | $ ~`` are backslash-escaped (CommonMark lets any ASCII punctuation be escaped); line
    breaks become spaces, so the result is safe inside a table cell, a heading or a list item.

    Parameters
    ----------
    text : anything; it is converted with ``str``.

    Returns
    -------
    str : the escaped text.

    Examples
    --------
    >>> print(escape_markdown("**bold** <b>x</b> | a_b"))
    \*\*bold\*\* &lt;b&gt;x&lt;/b&gt; \| a\_b
    >>> escape_markdown("two\nlines")
    'two lines'
    """
    out = str(text)
    for ch, entity in _ENTITIES:
        out = out.replace(ch, entity)
    for ch in _SPECIALS:
        out = out.replace(ch, "\\" + ch)
    return out.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
