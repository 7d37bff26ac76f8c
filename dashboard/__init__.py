"""deepscope's Streamlit dashboard; each role in one module, named after it.

- ``app.py`` — the entry point: routes to the pages (``st.navigation``).
- ``views/<page>.py`` — one page per file; pages only compose the modules below.
- :mod:`dashboard.runs` — finding runs: the runs folder, run ids, new folders, uploads.
- :mod:`dashboard.cache` — every library call the dashboard makes, behind ``st.cache_resource``
  (models) or ``st.cache_data`` (results), with typed results.
- :mod:`dashboard.widgets` — rendering helpers: guard, run picker, severity and verdict badges,
  findings, previews, attributions, trust verdicts, attention maps.
"""
