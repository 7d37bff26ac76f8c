"""Explanations: one test sample, one or more attribution methods side by side with their trust
verdicts; your own sentence for text models; the attention maps of Transformer models; the clip
of a sound, played next to its explanation."""

from __future__ import annotations

import numpy as np
import streamlit as st

import explain
from dashboard import cache as C
from dashboard import runs as R
from dashboard import widgets as W

W.page_header(
    "Explanations",
    "Which parts of the input drove the prediction, by several attribution methods side by "
    "side, and how far each explanation can be trusted (sanity and faithfulness checks).")

DEFAULT_METHODS = ("integrated_gradients", "saliency")


def _pick_sample(run_id: str, names: list[str]) -> tuple[int, int | None]:
    p = C.predictions(run_id, R.stamp_of(run_id))
    n = len(p.y)
    if "explain_index" in st.session_state:  # sent here by the Predictions page
        st.session_state["exp_index"] = int(st.session_state.pop("explain_index")) % max(1, n)
    cols = st.columns([1, 2, 2])
    index = int(cols[0].number_input("Test sample #", 0, max(0, n - 1), 0, step=1,
                                     key="exp_index"))
    y, pred, conf = int(p.y[index]), int(p.pred[index]), float(p.conf[index])
    options = [None, *range(len(names))]
    target = cols[1].selectbox(
        "Explain the class", options, key="exp_target",
        format_func=lambda c: "the predicted class" if c is None else W.class_name(names, c))
    true_name, pred_name = (W.escape_markdown(W.class_name(names, c)) for c in (y, pred))
    cols[2].markdown(f"{W.OK if y == pred else W.WRONG} true **{true_name}** · predicted "
                     f"**{pred_name}** ({conf:.0%})")
    return index, target


def _methods() -> list[str]:
    available = list(explain.list_methods())
    default = [m for m in DEFAULT_METHODS if m in available] or available[:1]
    return st.multiselect("Methods", available, default=default, key="exp_methods",
                          max_selections=4, help="Up to four, shown side by side.")


def _side_by_side(run_id: str, run, index: int, target: int | None, methods: list[str],
                  with_trust: bool) -> None:
    stamp = R.stamp_of(run_id)
    clip = R.clip_of(run, "test", index)
    if clip is not None:
        W.clip_player(clip)
    cols = st.columns(max(1, len(methods)))
    for col, method in zip(cols, methods):
        with col, W.guard(f"explain with {method}"):
            attr = C.attribution(run_id, stamp, index, method, target)
            st.markdown(f"**{method}**" + (f" (fell back from {attr.requested_method})"
                                           if attr.requested_method not in ("", attr.method) else ""))
            W.attribution_view(attr, run, key=f"attr_{method}", clip=clip)
            for w in attr.warnings:
                st.caption(f":material/info: {W.escape_markdown(w)}")
            if with_trust:
                W.trust_view(C.trust(run_id, stamp, index, method, target),
                             key=f"trust_{method}")


def _sentence(run_id: str, run, names: list[str], methods: list[str]) -> None:
    st.subheader("Try your own sentence")
    text = st.text_input("Sentence", value="a gripping, beautifully acted film", max_chars=500,
                         key="exp_sentence")
    if not text.strip():
        return
    stamp = R.stamp_of(run_id)
    out = C.sentence(run_id, stamp, text)
    probs = out.probs
    top = int(np.argmax(probs))
    st.markdown(f"Prediction: **{W.escape_markdown(W.class_name(names, top))}** ({probs[top]:.0%})"
                + (f" · {out.unknown} word(s) not in the vocabulary" if out.unknown else ""))
    method = methods[0] if methods else DEFAULT_METHODS[0]
    attr = C.sentence_attribution(run_id, stamp, text, method)
    scores = attr.values[0].detach().numpy()
    kept = [float(s) for s, i in zip(scores, out.ids[0]) if int(i) != out.pad_id]
    W.token_view(out.tokens, kept)
    st.caption(f"{method}: red pushes towards {W.class_name(names, top)}, blue against.")


def _page(run_id: str) -> None:
    run = C.get_run(run_id)
    if run.dataset is None:
        st.info("This run's data was passed in by the user, so its test set cannot be reloaded.")
        return
    names = list(run.card.class_names)
    index, target = _pick_sample(run_id, names)
    methods = _methods()
    with_trust = st.toggle("Show trust verdicts", value=True, key="exp_trust",
                           help="Sanity (randomized model) and faithfulness (deletion) checks.")
    if methods:
        _side_by_side(run_id, run, index, target, methods, with_trust)
    else:
        st.info("Pick at least one method.")
    if run.card.modality.value == "text":
        with W.guard("explain your sentence"):
            _sentence(run_id, run, names, methods)
    if W.has_attention(run.model):
        with W.guard("show the attention maps"):
            W.attention_view(run_id, index)


run_id = W.selected_run()
if run_id:
    with W.guard("explain this run"):
        _page(run_id)
