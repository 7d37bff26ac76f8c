"""Training health: curves with the overfitting point, gradient flow, dead/saturated units,
the RNN gradient-through-time curve, and every finding with its remedy."""

from __future__ import annotations

import streamlit as st

from dashboard import cache as C
from dashboard import runs as R
from dashboard import widgets as W
from explain import Severity
from explain.figures import training as F

W.page_header(
    "Training health",
    "How training went, read from the monitor's history: where validation loss turned, "
    "whether gradients reached every layer, and which units died or saturated.")

_METRICS = {
    "grad_norm": "gradient norm",
    "update_ratio": "update / weight ratio",
    "weight_norm": "weight norm",
    "act_std": "activation std",
    "frac_dead": "fraction of dead units",
    "frac_saturated": "fraction saturated",
}


def _summary(run, found) -> None:
    history = run.history
    bad = [f for f in found if f.severity >= Severity.WARN]
    worst = found[0].severity if found else Severity.PASS
    cols = st.columns(4)
    cols[0].metric("Health", f"{worst.mark} {worst.label}")
    cols[1].metric("Problems", f"{len(bad)} / {len(found)} checks")
    cols[2].metric("Epochs", history.num_epochs if hasattr(history, "num_epochs") else "?")
    acc = (run.metrics or {}).get("test_accuracy")
    cols[3].metric("Test accuracy", f"{acc:.1%}" if isinstance(acc, float) else "n/a")
    cost = history.monitor_cost() if hasattr(history, "monitor_cost") else None
    if cost:
        st.caption(cost)


def _page(run_id: str) -> None:
    run = C.get_run(run_id)
    history = run.history
    if history is None:
        st.info("This run has no training history (it was trained with monitor=False).")
        return
    stamp = R.stamp_of(run_id)
    found = C.findings(run_id, stamp)
    _summary(run, found)
    st.plotly_chart(C.training_figure(run_id, stamp, "loss", C.overfit_epoch(run_id, stamp)),
                    key="fig_loss")

    left, right = st.columns([3, 2])
    with left:
        available = [m for m in _METRICS if any(m in v for v in history.layers.values())]
        metric = st.selectbox("Per-layer signal", available or ["grad_norm"],
                              format_func=lambda m: _METRICS.get(m, m), key="flow_metric",
                              help="Rows are layers (input at the top), columns training steps.")
        st.plotly_chart(C.training_figure(run_id, stamp, "flow", metric), key="fig_flow")
    with right:
        st.plotly_chart(C.training_figure(run_id, stamp, "activations"), key="fig_act")
    if getattr(history, "temporal", None):
        st.plotly_chart(C.training_figure(run_id, stamp, "temporal"), key="fig_bptt")
    alphas = C.spectral(run_id, stamp)
    if alphas:
        st.plotly_chart(F.spectral_exponents(alphas), key="fig_spectral")

    st.subheader("Findings and remedies")
    W.show_findings(found)


run_id = W.selected_run()
if run_id:
    with W.guard("show the training health"):
        _page(run_id)
