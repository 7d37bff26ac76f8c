"""Renderers of an :class:`explain.Report`: HTML (self-contained, offline) and Markdown.

JSON is :meth:`explain.Report.to_dict`; ``Report.save(path)`` picks the format by extension.
"""

from explain.report.figures import section_figures
from explain.report.html import render_html
from explain.report.markdown import md_escape, render_markdown

__all__ = ["render_html", "render_markdown", "md_escape", "section_figures"]
