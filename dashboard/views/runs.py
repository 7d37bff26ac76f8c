"""Runs: every run in the runs folder at a glance; train a preset; upload a run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

import zoo
from dashboard import cache as C
from dashboard import runs as R
from dashboard import widgets as W
from explain import Severity

W.page_header(
    "Runs",
    "Every run folder (model.safetensors + run.json) in the runs folder: its model, data, "
    "test accuracy and the training diagnosis at a glance. Click a row to open that run.")


def _overview(ref: R.RunRef) -> C.RunOverview:
    try:
        return C.overview(ref.id, R.stamp_of(ref.id))
    except Exception as exc:  # one broken folder must not hide the others
        first = (str(exc).splitlines() or [""])[0][:160]
        return C.RunOverview(run=ref.id, model="?", modality="?", data="?", preset="",
                             test_accuracy=None, epochs=0, health=Severity.ERROR,
                             issues=f"cannot load: {type(exc).__name__}: {first}")


def _table(refs: list[R.RunRef]) -> None:
    rows = [_overview(ref) for ref in refs]
    df = pd.DataFrame({
        "run": [o.run for o in rows], "model": [o.model for o in rows],
        "modality": [o.modality for o in rows], "data": [o.data for o in rows],
        "preset": [o.preset for o in rows], "test accuracy": [o.test_accuracy for o in rows],
        "epochs": [o.epochs for o in rows], "health": [W.severity_text(o.health) for o in rows],
        "issues": [o.issues for o in rows]})
    event = st.dataframe(
        df, hide_index=True, on_select="rerun", selection_mode="single-row", key="runs_table",
        column_config={
            "test accuracy": st.column_config.ProgressColumn(
                "test accuracy", format="percent", min_value=0.0, max_value=1.0),
            "issues": st.column_config.TextColumn("issues", width="large"),
        })
    picked = event.selection.rows if event is not None else []
    # act on a new click only, so the sidebar picker still works after a row was selected
    if picked and picked != st.session_state.get("_runs_table_last"):
        st.session_state["_runs_table_last"] = picked
        run_id = rows[picked[0]].run
        if run_id != st.session_state.get("run_id"):
            st.session_state["run_id"] = run_id
            st.rerun()
    st.session_state["_runs_table_last"] = picked


def _diagnosis(run_id: str) -> None:
    st.subheader(f"Diagnosis of {run_id}")
    with W.guard("diagnose this run"):
        found = C.findings(run_id, R.stamp_of(run_id))
        bad = [f for f in found if f.severity >= Severity.WARN]
        st.markdown(f"**{len(bad)} of {len(found)} checks** found a problem."
                    + (" Open **Training health** for the curves behind them." if bad else ""))
        W.show_findings(found)


def _train_form() -> None:
    with st.expander(":material/model_training: Train a preset", expanded=not R.list_runs()):
        try:
            presets = list(zoo.list_presets())
        except Exception as exc:  # the trainer is optional for browsing runs
            st.info(f"Training from the dashboard is not available: {type(exc).__name__}.")
            return
        cols = st.columns([2, 1, 2])
        preset = cols[0].selectbox("Preset", presets, key="train_preset",
                                   help="Healthy recipes and ones with a planted pathology.")
        epochs = cols[1].number_input("Epochs (0 = preset's)", min_value=0, max_value=200,
                                      value=2, step=1, key="train_epochs")
        name = cols[2].text_input("Run name (default: the preset)", key="train_name",
                                  max_chars=64)
        with W.guard("describe the preset"):
            st.caption(zoo.get_preset(preset).description)
        target = _target(name.strip() or preset)
        go = st.button("Train", type="primary", key="train_go", disabled=target is None)
        if go and target is not None:
            _train(preset, int(epochs), *target)


def _target(name: str) -> tuple[Path, bool] | None:
    """The folder to train into: a fresh one, or ``name`` itself once the user agreed to replace
    the run in it (the old run stays readable until the new one is saved); and whether to replace."""
    from zoo.writer import existing_run

    with W.guard("choose the run folder"):
        fresh = R.new_run_folder(name)  # checks the name: only a plain folder name
        found = existing_run(R.runs_root() / name)
        if found is None:
            return fresh, False
        st.warning(f"`{name}` already holds {found.describe()}.", icon=":material/warning:")
        replace = st.checkbox(f"Replace the run in `{name}` (it stays readable until the new "
                              f"one is saved)", key="train_replace")
        if replace:
            return R.runs_root() / name, True
        st.caption(f"Training goes to a new folder, `{fresh.name}`, unless you tick the box.")
        return fresh, False
    return None


def _train(preset: str, epochs: int, out: Path, replace: bool) -> None:
    with W.guard(f"train {preset!r}"):
        bar = st.progress(0.0, text=f"Training {preset} ...")

        def progress(epoch: int, total: int, metrics: dict) -> None:
            acc = (metrics or {}).get("val_acc")
            note = f" · val acc {acc:.1%}" if isinstance(acc, float) else ""
            bar.progress(min(1.0, epoch / max(1, total)), text=f"epoch {epoch}/{total}{note}")

        config = {"epochs": epochs} if epochs > 0 else {}
        zoo.train(preset=preset, out=out, progress=False, callback=progress,
                  overwrite=replace, **config)
        bar.progress(1.0, text="Done.")
        st.session_state["run_id"] = out.name
        st.toast(f"Trained {out.name}.")
        st.rerun()


def _upload_form() -> None:
    with st.expander(":material/upload: Upload a run (model.safetensors + run.json)"):
        st.caption("Only these two files are accepted: weights as safetensors and the run's JSON. "
                   "No pickles, no code. They are saved under fixed names in a fresh temporary "
                   "run folder and checked like any run.")
        cols = st.columns(2)
        weights = cols[0].file_uploader("model.safetensors", type=["safetensors"], key="up_model")
        record = cols[1].file_uploader("run.json", type=["json"], key="up_json")
        go = st.button("Open the uploaded run", disabled=not (weights and record), key="up_go")
        if go and weights is not None and record is not None:
            with W.guard("open the uploaded run"):
                run_id = R.save_upload(weights.getvalue(), record.getvalue())
                st.session_state["run_id"] = run_id
                st.rerun()


W.run_picker()
refs = R.list_runs()
if refs:
    _table(refs)
else:
    st.info(f"No runs in `{R.runs_root()}` yet: train a preset below, or start the dashboard with "
            "`deepscope dashboard --runs DIR`.")
_train_form()
_upload_form()
run_id = st.session_state.get("run_id")
if run_id:
    _diagnosis(run_id)
