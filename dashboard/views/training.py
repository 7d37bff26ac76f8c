"""Training health: curves with the overfitting point, gradient flow, dead/saturated units,
the RNN gradient-through-time curve, and every finding with its remedy."""

from __future__ import annotations

import streamlit as st

from dashboard import _state as S
from dashboard import _ui as U
from explain.figures import training as F

U.page_header(
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


def _evidence(found: list[dict], check: str) -> dict:
    for f in found:
        if f["check"] == check:
            return f.get("evidence") or {}
    return {}


def _overfit_epoch(found: list[dict]) -> int | None:
    """The epoch the overfitting finding marks (only when it is a warning or worse)."""
    for f in found:
        if f["check"] == "overfitting" and f["severity"] in ("warn", "fail"):
            ev = f.get("evidence") or {}
            if isinstance(ev.get("best_epoch"), (int, float)):  # lowest validation loss
                return int(ev["best_epoch"])
    return None


@st.cache_data(max_entries=64, show_spinner=False)
def _figure(run_id: str, stamp: str, kind: str, arg: object = None):
    """One figure of the run's history, built once per (run, kind, argument)."""
    history = S.get_run(run_id).history
    if kind == "loss":
        return F.loss_curves(history, overfit_epoch=arg)
    if kind == "flow":
        return F.gradient_flow(history, metric=arg)
    if kind == "activations":
        return F.activation_health(history)
    return F.temporal_decay(history)


def _page(run_id: str) -> None:
    run = S.get_run(run_id)
    history = run.history
    if history is None:
        st.info("This run has no training history (it was trained with monitor=False).")
        return
    stamp = S.stamp_of(run_id)
    found = S.findings(run_id, stamp)
    bad = [f for f in found if f["severity"] in ("warn", "fail", "error")]
    worst = found[0]["severity"] if found else "pass"
    cols = st.columns(4)
    cols[0].metric("Health", f"{U.SEVERITY_MARK.get(worst, '')} {worst.upper()}")
    cols[1].metric("Problems", f"{len(bad)} / {len(found)} checks")
    cols[2].metric("Epochs", history.num_epochs if hasattr(history, "num_epochs") else "?")
    acc = (run.metrics or {}).get("test_accuracy")
    cols[3].metric("Test accuracy", f"{acc:.1%}" if isinstance(acc, float) else "n/a")
    cost = history.monitor_cost() if hasattr(history, "monitor_cost") else None
    if cost:
        st.caption(cost)

    st.plotly_chart(_figure(run_id, stamp, "loss", _overfit_epoch(found)), key="fig_loss")

    left, right = st.columns([3, 2])
    with left:
        available = [m for m in _METRICS if any(m in v for v in history.layers.values())]
        metric = st.selectbox("Per-layer signal", available or ["grad_norm"],
                              format_func=lambda m: _METRICS.get(m, m), key="flow_metric",
                              help="Rows are layers (input at the top), columns training steps.")
        st.plotly_chart(_figure(run_id, stamp, "flow", metric), key="fig_flow")
    with right:
        st.plotly_chart(_figure(run_id, stamp, "activations"), key="fig_act")
    if getattr(history, "temporal", None):
        st.plotly_chart(_figure(run_id, stamp, "temporal"), key="fig_bptt")
    spectral = _evidence(found, "spectral")
    layers, alpha = spectral.get("layers"), spectral.get("alpha")
    if isinstance(layers, list) and isinstance(alpha, list) and len(layers) == len(alpha) > 0:
        alphas = dict(zip(map(str, layers), alpha))
        st.plotly_chart(F.spectral_exponents(alphas), key="fig_spectral")

    st.subheader("Findings and remedies")
    U.show_findings(found)


run_id = U.selected_run()
if run_id:
    with U.guard("show the training health"):
        _page(run_id)
