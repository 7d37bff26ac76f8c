"""Predictions: browse test samples by class, mistakes and confidence; the confusion matrix
(click a cell to see its samples); the predicted probabilities of any sample."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from dashboard import _state as S
from dashboard import _ui as U
from explain.figures import performance as P

U.page_header(
    "Predictions",
    "The model on the held-out test set. Filter by class, mistakes or confidence; click a "
    "cell of the confusion matrix to list its samples; click Explain on a sample to see why "
    "the model predicted it.")

PER_PAGE = 12
ANY = -1


def _confusion(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (y, pred), 1)
    return m


def _clickable(fig: go.Figure, names: list[str], matrix: np.ndarray) -> go.Figure:
    """Invisible markers on every cell: plotly heatmaps emit no selection events, markers do.

    The markers take over the hover text, so a click lands on them rather than the heatmap.
    """
    xs = [n for _ in names for n in names]
    ys = [n for n in names for _ in names]
    fig.data[0].hoverinfo = "skip"
    fig.add_trace(go.Scatter(
        x=xs, y=ys, mode="markers", customdata=matrix.reshape(-1).tolist(),
        marker={"size": 30, "opacity": 0, "symbol": "square"}, showlegend=False, name="cells",
        hovertemplate="true %{y}<br>predicted %{x}<br>count %{customdata}"
                      "<br>click to list them<extra></extra>"))
    fig.update_layout(clickmode="event+select", dragmode=False)
    return fig


def _cell_from_click(event, names: list[str]) -> None:
    points = (event.selection.points if event is not None else None) or []
    if not points:
        return
    p = points[0]
    click = (str(p.get("y")), str(p.get("x")))
    if click == st.session_state.get("_cm_last"):
        return
    st.session_state["_cm_last"] = click
    if click[0] in names and click[1] in names:
        st.session_state["pred_true"] = names.index(click[0])
        st.session_state["pred_pred"] = names.index(click[1])
        st.session_state["pred_show"] = "all"
        st.session_state["pred_page"] = 1


def _filters(names: list[str]) -> tuple[int, int, str, tuple[float, float], str]:
    options = [ANY, *range(len(names))]

    def label(i: int) -> str:
        return "any class" if i == ANY else U.class_name(names, i)

    cols = st.columns([2, 2, 2, 3, 2])
    true_c = cols[0].selectbox("True class", options, format_func=label, key="pred_true")
    pred_c = cols[1].selectbox("Predicted class", options, format_func=label, key="pred_pred")
    show = cols[2].radio("Show", ["all", "mistakes", "correct"], horizontal=True, key="pred_show")
    conf = cols[3].slider("Confidence", 0.0, 1.0, (0.0, 1.0), step=0.05, key="pred_conf")
    order = cols[4].selectbox("Sort by", ["least confident", "most confident", "index"],
                              key="pred_sort")
    return true_c, pred_c, show, conf, order


def _select(p: dict, true_c: int, pred_c: int, show: str, conf: tuple[float, float],
            order: str) -> np.ndarray:
    y, pred, c = p["y"], p["pred"], p["conf"]
    keep = (c >= conf[0] - 1e-9) & (c <= conf[1] + 1e-9)
    if true_c != ANY:
        keep &= y == true_c
    if pred_c != ANY:
        keep &= pred == pred_c
    if show == "mistakes":
        keep &= y != pred
    elif show == "correct":
        keep &= y == pred
    idx = np.flatnonzero(keep)
    if order == "least confident":
        idx = idx[np.argsort(c[idx], kind="stable")]
    elif order == "most confident":
        idx = idx[np.argsort(-c[idx], kind="stable")]
    return idx


def _gallery(run, p: dict, idx: np.ndarray, names: list[str]) -> np.ndarray:
    pages = max(1, int(np.ceil(len(idx) / PER_PAGE)))
    if st.session_state.get("pred_page", 1) > pages:
        st.session_state["pred_page"] = 1
    page = st.pagination(pages, key="pred_page") if pages > 1 else 1
    shown = idx[(page - 1) * PER_PAGE: page * PER_PAGE]
    x = run.dataset.test.tensors[0]
    modality = run.card.modality.value
    vocab = getattr(run, "vocab", None) or getattr(run.dataset, "vocab", None)
    cols = st.columns(6 if modality == "image" else 3)
    for k, i in enumerate(shown):
        i = int(i)
        with cols[k % len(cols)]:
            ok = p["y"][i] == p["pred"][i]
            U.preview(x[i], modality, vocab=vocab)
            st.markdown(f"{U.OK if ok else U.WRONG} **{U.md_escape(U.class_name(names, int(p['pred'][i])))}**"
                        f" {p['conf'][i]:.0%}")
            st.caption(f"#{i} · true {U.md_escape(U.class_name(names, int(p['y'][i])))}")
            if st.button("Explain", key=f"explain_{i}"):
                st.session_state["explain_index"] = i
                st.switch_page("views/explanations.py")
    return shown


def _probabilities(p: dict, names: list[str], shown: np.ndarray) -> None:
    if len(shown) == 0:
        return
    options = [int(i) for i in shown]
    i = st.selectbox("Probabilities of sample", options, key="pred_focus",
                     format_func=lambda j: f"#{j} (true: {U.class_name(names, int(p['y'][j]))})")
    probs = p["probs"][i]
    colours = ["#2ca02c" if c == p["y"][i] else "#1f77b4" for c in range(len(probs))]
    fig = go.Figure(go.Bar(x=[U.class_name(names, c) for c in range(len(probs))], y=probs,
                           marker_color=colours,
                           hovertemplate="%{x}: %{y:.1%}<extra></extra>"))
    fig.update_layout(title=f"Predicted probabilities of sample #{i} (green = true class)",
                      template="plotly_white", height=300, yaxis={"range": [0, 1],
                                                                   "tickformat": ".0%"},
                      xaxis={"type": "category"}, margin={"t": 50, "b": 40})
    st.plotly_chart(fig, key="fig_probs")


def _page(run_id: str) -> None:
    run = S.get_run(run_id)
    if run.dataset is None:
        st.info("This run's data was passed in by the user, so its test set cannot be reloaded.")
        return
    p = S.predictions(run_id, S.stamp_of(run_id))
    names = list(run.card.class_names)
    n, wrong = len(p["y"]), int((p["y"] != p["pred"]).sum())
    cols = st.columns(4)
    cols[0].metric("Test samples", f"{n:,}")
    cols[1].metric("Accuracy", f"{1 - wrong / max(1, n):.1%}")
    cols[2].metric("Mistakes", f"{wrong:,}")
    cols[3].metric("Mean confidence", f"{float(p['conf'].mean()) if n else 0:.1%}")

    left, right = st.columns([2, 3])
    with left:
        matrix = _confusion(p["y"], p["pred"], len(names))
        fig = _clickable(P.confusion_matrix(matrix.tolist(), names), names, matrix)
        event = st.plotly_chart(fig, key="fig_confusion", on_select="rerun",
                                selection_mode="points")
        _cell_from_click(event, names)
        st.caption("Click a cell to list its samples.")
    with right:
        filters = _filters(names)
        idx = _select(p, *filters)
        st.markdown(f"**{len(idx):,}** matching samples")
        shown = _gallery(run, p, idx, names)
    _probabilities(p, names, shown)


run_id = U.selected_run()
if run_id:
    with U.guard("show the predictions"):
        _page(run_id)
