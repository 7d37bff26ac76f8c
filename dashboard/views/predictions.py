"""Predictions: browse test samples by class, mistakes and confidence; the confusion matrix
(click a cell to see its samples); the predicted probabilities of any sample."""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard import cache as C
from dashboard import runs as R
from dashboard import widgets as W
from explain.figures import predictions as FP

W.page_header(
    "Predictions",
    "The model on the held-out test set. Filter by class, mistakes or confidence; click a "
    "cell of the confusion matrix to list its samples; click Explain on a sample to see why "
    "the model predicted it.")

PER_PAGE = 12
ANY = -1


def _cell_from_click(event) -> None:
    """A click on a confusion-matrix cell sets the class filters to that cell."""
    points = (event.selection.points if event is not None else None) or []
    cell = points[0].get("customdata") if points else None  # [true, predicted, count]
    if not cell or len(cell) < 2:
        return
    click = (int(cell[0]), int(cell[1]))
    if click == st.session_state.get("_cm_last"):
        return
    st.session_state["_cm_last"] = click
    st.session_state["pred_true"], st.session_state["pred_pred"] = click
    st.session_state["pred_show"] = "all"
    st.session_state["pred_page"] = 1


def _filters(names: list[str]) -> tuple[int, int, str, tuple[float, float], str]:
    options = [ANY, *range(len(names))]

    def label(i: int) -> str:
        return "any class" if i == ANY else W.class_name(names, i)

    cols = st.columns([2, 2, 2, 3, 2])
    true_c = cols[0].selectbox("True class", options, format_func=label, key="pred_true")
    pred_c = cols[1].selectbox("Predicted class", options, format_func=label, key="pred_pred")
    show = cols[2].radio("Show", ["all", "mistakes", "correct"], horizontal=True, key="pred_show")
    conf = cols[3].slider("Confidence", 0.0, 1.0, (0.0, 1.0), step=0.05, key="pred_conf")
    order = cols[4].selectbox("Sort by", ["least confident", "most confident", "index"],
                              key="pred_sort")
    return true_c, pred_c, show, conf, order


def _select(p: C.Predictions, true_c: int, pred_c: int, show: str, conf: tuple[float, float],
            order: str) -> np.ndarray:
    y, pred, c = p.y, p.pred, p.conf
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


def _gallery(run, p: C.Predictions, idx: np.ndarray, names: list[str]) -> np.ndarray:
    pages = max(1, int(np.ceil(len(idx) / PER_PAGE)))
    if st.session_state.get("pred_page", 1) > pages:
        st.session_state["pred_page"] = 1
    page = st.pagination(pages, key="pred_page") if pages > 1 else 1
    shown = idx[(page - 1) * PER_PAGE: page * PER_PAGE]
    x = run.dataset.test.tensors[0]
    modality = run.card.modality.value
    vocab = R.vocab_of(run)
    cols = st.columns(6 if modality == "image" else 3)
    for k, i in enumerate(shown):
        i = int(i)
        with cols[k % len(cols)]:
            ok = p.y[i] == p.pred[i]
            W.preview(x[i], modality, vocab=vocab)
            W.clip_player(R.clip_of(run, "test", i))
            pred_name = W.escape_markdown(W.class_name(names, int(p.pred[i])))
            st.markdown(f"{W.OK if ok else W.WRONG} **{pred_name}** {p.conf[i]:.0%}")
            st.caption(f"#{i} · true {W.escape_markdown(W.class_name(names, int(p.y[i])))}")
            if st.button("Explain", key=f"explain_{i}"):
                st.session_state["explain_index"] = i
                st.switch_page("views/explanations.py")
    return shown


def _probabilities(p: C.Predictions, names: list[str], shown: np.ndarray) -> None:
    if len(shown) == 0:
        return
    options = [int(i) for i in shown]
    i = st.selectbox("Probabilities of sample", options, key="pred_focus",
                     format_func=lambda j: f"#{j} (true: {W.class_name(names, int(p.y[j]))})")
    fig = FP.class_probabilities(p.probs[i], names, true_class=int(p.y[i]), sample=i)
    st.plotly_chart(fig, key="fig_probs")


def _page(run_id: str) -> None:
    run = C.get_run(run_id)
    if run.dataset is None:
        st.info("This run's data was passed in by the user, so its test set cannot be reloaded.")
        return
    p = C.predictions(run_id, R.stamp_of(run_id))
    names = list(run.card.class_names)
    n, wrong = len(p.y), int((p.y != p.pred).sum())
    cols = st.columns(4)
    cols[0].metric("Test samples", f"{n:,}")
    cols[1].metric("Accuracy", f"{1 - wrong / max(1, n):.1%}")
    cols[2].metric("Mistakes", f"{wrong:,}")
    cols[3].metric("Mean confidence", f"{float(p.conf.mean()) if n else 0:.1%}")

    left, right = st.columns([2, 3])
    with left:
        fig = FP.selectable_confusion_matrix(p.confusion.tolist(), names)
        event = st.plotly_chart(fig, key="fig_confusion", on_select="rerun",
                                selection_mode="points")
        _cell_from_click(event)
        st.caption("Click a cell to list its samples.")
    with right:
        filters = _filters(names)
        idx = _select(p, *filters)
        st.markdown(f"**{len(idx):,}** matching samples")
        shown = _gallery(run, p, idx, names)
    _probabilities(p, names, shown)


run_id = W.selected_run()
if run_id:
    with W.guard("show the predictions"):
        _page(run_id)
