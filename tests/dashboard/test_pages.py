"""One AppTest per dashboard page against a real (tiny) run: key widgets, values, interactions."""

from __future__ import annotations

import json
import pickle  # only to build a hostile upload; nothing here ever unpickles

import pytest

from dashboard import cache as C
from dashboard import runs as R
from dashboard import widgets as W
from explain.auditing.sections import QUESTION_SECTIONS
from tests.dashboard.helpers import RUN_ID, open_page, plotly_specs


def _md(at) -> list[str]:
    return [m.value for m in at.markdown]


# ----------------------------------------------------------------------------- Runs
def test_runs_page_lists_the_run_with_its_accuracy_and_diagnosis(app):
    # Arrange
    run = C.get_run(RUN_ID)
    # Act: the fixture already landed on the default page
    table = app.dataframe[0].value
    # Assert
    row = table[table["run"] == RUN_ID].iloc[0]
    assert (row["model"], row["data"], row["preset"], row["epochs"]) == ("mlp", "digits",
                                                                         "mlp-digits", 2)
    assert row["test accuracy"] == pytest.approx(run.metrics["test_accuracy"])
    health = C.overview(RUN_ID, R.stamp_of(RUN_ID)).health
    assert row["health"] == f"{health.mark} {health.value}"
    assert "mlp-digits" in app.selectbox(key="train_preset").options
    assert [u.label for u in app.file_uploader] == ["model.safetensors", "run.json"]
    assert app.sidebar.selectbox(key="_run_picker").value == RUN_ID
    assert any(m.startswith("**") and "checks** found" in m for m in _md(app))


def test_runs_page_refuses_a_pickled_upload(app, tmp_path, monkeypatch):
    monkeypatch.setattr(R, "upload_root", lambda: tmp_path / "uploads")
    record = (R.resolve_run(RUN_ID) / "run.json").read_bytes()
    app.file_uploader[0].set_value(("evil.safetensors", pickle.dumps([1]), "application/octet-stream"))
    app.file_uploader[1].set_value(("run.json", record, "application/json"))
    app.run()
    app.button(key="up_go").click().run()
    assert not app.exception
    assert len(app.error) == 1 and "must be a safetensors file" in app.error[0].value
    assert "Traceback" not in app.error[0].value


def test_runs_page_opens_an_uploaded_run(app, tmp_path, monkeypatch):
    monkeypatch.setattr(R, "upload_root", lambda: tmp_path / "uploads")
    folder = R.resolve_run(RUN_ID)
    app.file_uploader[0].set_value(("../../x.safetensors", (folder / "model.safetensors").read_bytes(),
                                    "application/octet-stream"))
    app.file_uploader[1].set_value(("x.json", (folder / "run.json").read_bytes(), "application/json"))
    app.run()
    app.button(key="up_go").click().run()
    assert not app.exception and not app.error
    picked = app.session_state["run_id"]
    assert picked.startswith("upload-")
    assert picked in app.sidebar.selectbox(key="_run_picker").options
    assert sorted(p.name for p in (tmp_path / "uploads" / picked).iterdir()) == [
        "model.safetensors", "run.json"]


# ----------------------------------------------------------------------------- Training health
def test_training_page_draws_the_curves_and_switches_the_layer_signal(app):
    # Act
    open_page(app, "training")
    figs = plotly_specs(app)
    # Assert: the report's figures, with the run's own numbers
    assert {"fig_loss", "fig_flow", "fig_act"} <= set(figs)
    loss = json.loads(figs["fig_loss"])
    names = [t.get("name") for t in loss["data"]]
    assert names[:2] == ["train loss", "val loss"]
    history = C.get_run(RUN_ID).history
    assert loss["data"][0]["y"] == pytest.approx(history.epochs["train_loss"])
    flow = json.loads(figs["fig_flow"])
    assert flow["data"][0]["y"] == list(history.layers)
    assert "grad_norm" in flow["data"][0]["colorbar"]["title"]["text"]
    # Act: another per-layer signal
    app.selectbox(key="flow_metric").set_value("update_ratio").run()
    # Assert
    flow = json.loads(plotly_specs(app)["fig_flow"])
    assert "update_ratio" in flow["data"][0]["colorbar"]["title"]["text"]
    found = C.findings(RUN_ID, R.stamp_of(RUN_ID))
    assert app.metric[0].value == f"{found[0].severity.mark} {found[0].severity.label}"
    assert len(app.expander) == len(found)  # one per finding, with its remedy
    assert app.expander[0].label.startswith(found[0].severity.material)


# ----------------------------------------------------------------------------- Predictions
def test_predictions_page_filters_mistakes_and_classes(app):
    # Arrange
    p = C.predictions(RUN_ID, R.stamp_of(RUN_ID))
    wrong = int((p.y != p.pred).sum())
    # Act
    open_page(app, "predictions")
    # Assert: everything is listed, paginated 12 at a time, with the confusion matrix
    assert f"**{len(p.y):,}** matching samples" in _md(app)
    assert app.get("pagination")[0].proto.num_pages == -(-len(p.y) // 12)
    assert "fig_confusion" in plotly_specs(app)
    cm = json.loads(plotly_specs(app)["fig_confusion"])["data"][0]["text"]
    assert sum(int(v) for row in cm for v in row) == len(p.y)
    # Act: only the mistakes
    app.radio(key="pred_show").set_value("mistakes").run()
    # Assert
    assert f"**{wrong:,}** matching samples" in _md(app)
    cards = [m for m in _md(app) if m.startswith((W.OK, W.WRONG))]
    assert cards and all(c.startswith(W.WRONG) for c in cards)
    # Act: one true class, all predictions
    app.radio(key="pred_show").set_value("all").run()
    app.selectbox(key="pred_true").set_value(3).run()
    assert f"**{int((p.y == 3).sum()):,}** matching samples" in _md(app)


def test_predictions_page_sends_a_sample_to_explanations(app):
    open_page(app, "predictions")
    first = next(b for b in app.button if b.key and b.key.startswith("explain_"))
    index = int(first.key.split("_")[1])
    first.click().run()
    assert not app.exception
    assert app.number_input(key="exp_index").value == index


# ----------------------------------------------------------------------------- Explanations
def test_explanations_page_shows_methods_side_by_side_with_trust(app):
    # Act
    open_page(app, "explanations")
    # Assert
    assert app.multiselect(key="exp_methods").value == ["integrated_gradients", "saliency"]
    heads = [m for m in _md(app) if m in ("**integrated_gradients**", "**saliency**")]
    assert heads == ["**integrated_gradients**", "**saliency**"]
    verdicts = [m for m in _md(app) if m.startswith("Trust:")]
    assert len(verdicts) == 2
    assert {"attr_integrated_gradients", "attr_saliency"} <= set(plotly_specs(app))
    before = plotly_specs(app)["attr_saliency"]
    # Act: another sample
    app.number_input(key="exp_index").set_value(5).run()
    # Assert: a different picture, no error
    assert not app.error
    assert plotly_specs(app)["attr_saliency"] != before


# ----------------------------------------------------------------------------- Audit
@pytest.fixture()
def fast_audit(monkeypatch):
    """The real audit, explaining 2 samples instead of 8 (same code path, a third the time)."""
    monkeypatch.setattr(C, "AUDIT_SAMPLES", 2)


def test_audit_page_runs_the_audit_and_offers_three_downloads(app, fast_audit):
    open_page(app, "audit")
    assert [b.key for b in app.button] == ["audit_go"]
    app.button(key="audit_go").click().run(timeout=300)
    assert not app.exception and not app.error
    assert any(f"{s}: " in app.subheader[0].value for s in ("PASS", "INFO", "WARN", "FAIL"))
    assert [b.label for b in app.download_button] == ["HTML", "JSON", "Markdown"]
    assert any("deepscope" in m.lower() or "#" in m for m in _md(app))
    # the four questions, each with its own heading, in the report's order
    titles = [h.value for h in app.subheader[1:5]]
    assert titles == [k.title for k in QUESTION_SECTIONS]
    assert any("Clean accuracy" in m for m in _md(app))  # the robustness table's lead sentence


@pytest.mark.slow  # ~10 s on 2 busy cores: trains a model
def test_runs_page_trains_a_preset_with_a_progress_bar(tmp_path, monkeypatch):
    # Arrange: an empty runs folder
    from streamlit.testing.v1 import AppTest

    from tests.dashboard.helpers import APP

    monkeypatch.setenv("DEEPSCOPE_RUNS", str(tmp_path / "runs"))
    at = AppTest.from_file(str(APP), default_timeout=300).run()
    assert any("No runs in" in i.value for i in at.info)
    # Act
    at.selectbox(key="train_preset").set_value("mlp-digits")
    at.number_input(key="train_epochs").set_value(1)
    at.button(key="train_go").click().run()
    # Assert: the run exists, is selected and listed
    assert not at.exception and not at.error
    assert at.session_state["run_id"] == "mlp-digits"
    assert (tmp_path / "runs" / "mlp-digits" / "model.safetensors").is_file()
    table = at.dataframe[0].value
    assert list(table["run"]) == ["mlp-digits"] and list(table["epochs"]) == [1]


@pytest.fixture(scope="module")
def text_runs(tmp_path_factory):
    """A tiny Transformer on Rotten Tomatoes (1 epoch, d_model 16): a text run with attention."""
    import zoo

    root = tmp_path_factory.mktemp("text") / "runs"
    zoo.train(preset="transformer-rt", out=root / "tiny-text", epochs=1, progress=False,
              device="cpu", model_kwargs={"d_model": 16, "heads": 2, "layers": 1, "ff": 32})
    return root


@pytest.mark.slow  # trains a Transformer on 12.8k reviews (a minute or more on 2 cores)
def test_explanations_page_for_text_types_a_sentence_and_shows_attention(text_runs, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.dashboard.helpers import APP

    monkeypatch.setenv("DEEPSCOPE_RUNS", str(text_runs))
    at = AppTest.from_file(str(APP), default_timeout=300).run()
    open_page(at, "explanations")
    assert "fig_attention" in plotly_specs(at)
    tokens = [m for m in _md(at) if m.startswith('<div class="deepscope-tokens"')]
    assert len(tokens) == 3  # two methods + the typed sentence
    # Act: a hostile sentence
    at.text_input(key="exp_sentence").set_value("a dull <b>mess</b> & boring").run()
    # Assert: prediction shown, markup escaped, never rendered
    assert not at.exception and not at.error
    assert any(m.startswith("Prediction: **") for m in _md(at))
    html = [m for m in _md(at) if m.startswith('<div class="deepscope-tokens"')][-1]
    assert "<b>" not in html and ">dull<" in html
