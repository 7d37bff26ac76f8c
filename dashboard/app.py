"""deepscope dashboard: the entry point routes to one page per file in ``dashboard/views/``.

(Not ``pages/``: Streamlit serves a folder of that name in its legacy multipage mode when a
session opens on a deep link.)

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

st.set_page_config(page_title="deepscope", page_icon="🔬", layout="wide")

PAGES = [
    st.Page("views/runs.py", title="Runs", icon=":material/folder_open:", url_path="runs", default=True),
    st.Page("views/training.py", title="Training health", icon=":material/monitor_heart:", url_path="training"),
    st.Page("views/predictions.py", title="Predictions", icon=":material/ads_click:", url_path="predictions"),
    st.Page("views/explanations.py", title="Explanations", icon=":material/manage_search:", url_path="explanations"),
    st.Page("views/audit.py", title="Audit", icon=":material/fact_check:", url_path="audit"),
]


st.navigation(PAGES).run()  # every page draws the sidebar run picker itself (widgets.run_picker)
