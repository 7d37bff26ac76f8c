"""The dashboard's rendering helpers: every grade and verdict, escaping, findings."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import widgets as W
from explain import Severity, Verdict


@pytest.mark.parametrize("severity", list(Severity))
def test_every_severity_renders_with_its_own_look(severity):
    assert W.severity_badge(severity) == f"{severity.material} {severity.label}"
    assert W.severity_text(severity) == f"{severity.mark} {severity.value}"


def test_skipped_renders_below_pass():
    assert W.severity_badge(Severity.SKIPPED) == ":gray[:material/skip_next:] SKIPPED"
    assert W.severity_text(Severity.SKIPPED) == "– skipped"


@pytest.mark.parametrize("verdict", list(Verdict))
def test_every_verdict_renders_with_the_icon_of_its_severity(verdict):
    assert W.verdict_badge(verdict) == f"{verdict.severity.material} **{verdict.label}**"


def test_verdict_badges_pin_the_mapping():
    assert [W.verdict_badge(v) for v in Verdict] == [
        ":green[:material/check_circle:] **trustworthy**",
        ":orange[:material/warning:] **doubtful**",
        ":red[:material/cancel:] **fails sanity**"]


def _every_grade() -> None:
    import streamlit as st

    from dashboard import widgets as W
    from explain import Severity, Verdict

    for severity in Severity:
        st.markdown(W.severity_badge(severity))
    for verdict in Verdict:
        st.markdown(W.verdict_badge(verdict))


def test_every_severity_and_verdict_renders_in_streamlit():
    # Act
    at = AppTest.from_function(_every_grade).run()
    # Assert: one markdown element per grade, in order, no exception
    assert not at.exception
    assert [m.value for m in at.markdown] == (
        [W.severity_badge(s) for s in Severity] + [W.verdict_badge(v) for v in Verdict])


def _findings_page() -> None:
    from dashboard import widgets as W
    from explain import Finding, Severity

    W.show_findings([
        Finding("overfitting", Severity.FAIL, "Validation loss rose for 5 epochs.", {"best_epoch": 3},
                "Stop at epoch 3."),
        Finding("dead-units", Severity.SKIPPED, "No activations were recorded."),
        Finding("<b>x</b>", Severity.PASS, "All *fine*.")])


def test_findings_expand_from_warn_and_escape_data():
    # Act
    at = AppTest.from_function(_findings_page).run()
    # Assert
    assert not at.exception
    labels = [e.label for e in at.expander]
    assert labels == [
        ":red[:material/cancel:] FAIL · overfitting — Validation loss rose for 5 epochs.",
        ":gray[:material/skip_next:] SKIPPED · dead-units — No activations were recorded.",
        ":green[:material/check_circle:] PASS · &lt;b&gt;x&lt;/b&gt; — All \\*fine\\*."]
    assert [e.proto.expanded for e in at.expander] == [True, False, False]
    assert at.markdown[0].value == "**What to do:** Stop at epoch 3."


def test_class_name_falls_back_to_the_index():
    assert W.class_name(["cat", "dog"], 1) == "dog"
    assert W.class_name(["cat", "dog"], 5) == "5"


def test_the_guard_shows_one_line_and_no_traceback():
    def page() -> None:
        import explain
        from dashboard import widgets as W

        with W.guard("load the run"):
            raise explain.InvalidInputError("The run name must be plain. Got '../x' instead.")
        with W.guard("draw"):
            raise RuntimeError("boom\nsecond line")

    at = AppTest.from_function(page).run()
    assert [e.value for e in at.error] == [
        "Could not load the run: The run name must be plain. Got '../x' instead.",
        "Could not draw: RuntimeError: boom"]
