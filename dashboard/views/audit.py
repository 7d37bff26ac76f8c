"""Audit: run the audit of the selected run, read it here, download HTML/JSON/Markdown."""

from __future__ import annotations

import streamlit as st

import explain
from dashboard import cache as C
from dashboard import runs as R
from dashboard import widgets as W
from explain.auditing.sections import QUESTION_SECTIONS
from explain.figures.report import section_figures
from explain.report import question_tables

W.page_header(
    "Audit",
    "One call that checks everything: training health, test performance and calibration, and "
    "whether the explanations can be trusted. Download it to share.")

# label, Report.render format, MIME type, file extension
_FORMATS = (("HTML", "html", "text/html", "html"), ("JSON", "json", "application/json", "json"),
            ("Markdown", "markdown", "text/markdown", "md"))


def _run_audit(run_id: str, stamp: str) -> None:
    bar = st.progress(0.0, text="Starting the audit ...")

    def progress(stage: str, done: int, total: int) -> None:
        bar.progress(min(1.0, done / max(1, total)), text=f"Audit: {stage} ({done}/{total})")

    report = C.audit(run_id, progress=progress)
    texts = {fmt: report.render(fmt) for _, fmt, _, _ in _FORMATS}  # rendered once, not per click
    st.session_state.setdefault("_audits", {})[run_id] = (stamp, report, texts,
                                                          section_figures(report))
    bar.empty()


def _questions(report: explain.Report, figures: dict[str, list]) -> None:
    """Is deep better than shallow here, does it hold under shift and corruption, are its
    probabilities honest: each question section's tables and figures (or why it is missing)."""
    for kind in QUESTION_SECTIONS:
        sec = report.section(kind)
        st.subheader(sec.title)
        if not sec.available:
            st.info(W.escape_markdown(sec.reason))
            continue
        for table in question_tables(sec) or []:
            W.show_table(table)
        for i, fig in enumerate(figures.get(sec.name, [])):
            st.plotly_chart(fig, key=f"q_{sec.name}_{i}")


def _show(run_id: str, report: explain.Report, texts: dict[str, str],
          figures: dict[str, list]) -> None:
    st.subheader(f"{W.severity_badge(report.severity)}: "
                 f"{W.escape_markdown(report.verdict.headline)}")
    cols = st.columns(len(_FORMATS) + 1)
    for col, (label, fmt, mime, ext) in zip(cols, _FORMATS):
        col.download_button(label, texts[fmt], icon=":material/download:", file_name=f"deepscope-audit-{run_id}.{ext}",
                            mime=mime, key=f"dl_{fmt}", on_click="ignore")
    if cols[-1].button("Run again", key="audit_again"):
        st.session_state["_audits"].pop(run_id, None)
        st.rerun()
    tab_findings, tab_questions, tab_report = st.tabs(["Findings", "Four questions",
                                                       "Full report"])
    with tab_findings:
        W.show_findings(report.findings)
    with tab_questions:
        _questions(report, figures)
    with tab_report:
        st.markdown(texts["markdown"])  # Streamlit never renders raw HTML from this
    if report.timings:
        st.caption("Took " + ", ".join(f"{k} {v:.1f} s" for k, v in report.timings.items()))


def _page(run_id: str) -> None:
    stamp = R.stamp_of(run_id)
    saved = st.session_state.get("_audits", {}).get(run_id)
    if saved is None or saved[0] != stamp:
        st.markdown(f"No audit of **{W.escape_markdown(run_id)}** yet. It explains a few test samples "
                    "with several methods and checks them, so it takes a little while.")
        if not st.button("Run the audit", type="primary", key="audit_go"):
            return
        _run_audit(run_id, stamp)
        st.rerun()  # redraw without the prompt
    _show(run_id, *saved[1:])


run_id = W.selected_run()
if run_id:
    with W.guard("audit this run"):
        _page(run_id)
