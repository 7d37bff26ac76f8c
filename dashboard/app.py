"""deepscope dashboard: the entry point routes to one page per file in ``dashboard/pages/``.

Start it with ``deepscope dashboard --runs runs`` (settings shipped in ``dashboard/config.toml``)
or ``streamlit run dashboard/app.py`` (runs folder from ``$DEEPSCOPE_RUNS``, else ``./runs``).
"""

from __future__ import annotations

import sys
from pathlib import Path

try:  # `streamlit run dashboard/app.py` from a checkout that was not pip-installed
    import dashboard  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import streamlit as st

from dashboard import _state as S

st.set_page_config(page_title="deepscope", page_icon="🔬", layout="wide")

PAGES = [
    st.Page("pages/runs.py", title="Runs", icon="📁", url_path="runs", default=True),
    st.Page("pages/training.py", title="Training health", icon="🩺", url_path="training"),
    st.Page("pages/predictions.py", title="Predictions", icon="🎯", url_path="predictions"),
    st.Page("pages/explanations.py", title="Explanations", icon="🔍", url_path="explanations"),
    st.Page("pages/audit.py", title="Audit", icon="📋", url_path="audit"),
]


def _run_picker() -> None:
    """The sidebar's run selector; its choice is ``st.session_state["run_id"]`` on every page."""
    ids = [ref.id for ref in S.list_runs()]
    st.sidebar.markdown("### 🔬 deepscope")
    if not ids:
        st.session_state["run_id"] = None
        st.sidebar.caption(f"No runs in `{S.runs_root()}` yet.")
        return
    pending = st.session_state.pop("_select_run", None)  # set by a page: train / upload / click
    if pending in ids:
        st.session_state["run_picker"] = pending
    if st.session_state.get("run_picker") not in ids:
        st.session_state["run_picker"] = ids[0]
    st.session_state["run_id"] = st.sidebar.selectbox(
        "Run", ids, key="run_picker",
        help="Run folders found in the runs folder (and runs you uploaded).")
    st.sidebar.caption(f"Runs folder: `{S.runs_root()}`")


page = st.navigation(PAGES)
_run_picker()
page.run()
