"""Audit: run ``explain.audit`` on the selected run, read it here, download HTML/JSON/Markdown."""

from __future__ import annotations

import streamlit as st

from dashboard import _compute as C
from dashboard import _state as S
from dashboard import _ui as U

st.title("📋 Audit")
st.caption("One call that checks everything: training health, test performance and calibration, "
           "and whether the explanations can be trusted. Download it to share.")

_FORMATS = (("HTML", "html", "text/html", "html"), ("JSON", "json", "application/json", "json"),
            ("Markdown", "markdown", "text/markdown", "md"))


def _sections(report) -> None:
    for name, data in report.sections.items():
        if not isinstance(data, dict):
            continue
        ok = data.get("available", True)
        with st.expander(f"{'📄' if ok else '⛔'} {name.replace('_', ' ')}", expanded=False):
            if not ok:
                st.caption(U._md_escape(data.get("reason", "Not available.")))
            else:
                st.json({k: v for k, v in data.items() if k != "available"}, expanded=False)


def _page(run_id: str) -> None:
    stamp = S.stamp_of(run_id)
    done = st.session_state.get("_audited", {})
    if done.get(run_id) != stamp:
        st.markdown(f"No audit of **{U._md_escape(run_id)}** yet in this session.")
        if not st.button("Run the audit", type="primary", key="audit_go"):
            return
        done[run_id] = stamp
        st.session_state["_audited"] = done
    report = C.audit(run_id, stamp)
    sev = report.verdict.get("severity", "pass")
    st.subheader(f"{U.SEVERITY_ICON.get(sev, '')} {sev.upper()}: "
                 f"{U._md_escape(report.verdict.get('headline', ''))}")
    cols = st.columns(len(_FORMATS))
    base = f"deepscope-audit-{run_id}"
    for col, (label, fmt, mime, ext) in zip(cols, _FORMATS):
        with col, U.guard(f"render the {label} report"):
            col.download_button(f"Download {label}", report.render(fmt), file_name=f"{base}.{ext}",
                                mime=mime, key=f"dl_{fmt}", on_click="ignore")
    st.subheader("Findings")
    U.show_findings([f.to_dict() for f in report.findings])
    _sections(report)
    if report.timings:
        st.caption("Took " + ", ".join(f"{k} {v:.1f} s" for k, v in report.timings.items()))


run_id = U.selected_run()
if run_id:
    with U.guard("audit this run"):
        _page(run_id)
