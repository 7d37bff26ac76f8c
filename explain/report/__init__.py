"""Renderers of an :class:`explain.Report`: HTML (self-contained, offline) and Markdown.

JSON is :meth:`explain.Report.to_dict`; ``Report.save(path)`` picks the format by extension.
The figures come from :func:`explain.figures.report.section_figures`.
"""

from explain.report.html import render_html
from explain.report.markdown import md_escape, render_markdown
from explain.report.tables import Table, question_tables

__all__ = ["render_html", "render_markdown", "md_escape", "Table", "question_tables"]
