"""The explanations section puts data- next to model-randomization sanity, in JSON, HTML, Markdown."""

from __future__ import annotations

from explain.auditing.sections import ExplanationsSection, MethodResult
from explain.auditing.sections.explanations import SanityRow
from explain.quality import Quality
from explain.report.tables import sanity_cell


def _method(name: str, medians: dict, passed: dict) -> MethodResult:
    q = Quality(method=name, verdict="trustworthy", summary="s", n_samples=2, medians=medians,
                passed=passed)
    return MethodResult(name, used=name, quality=q)


def test_rows_pair_both_tests_and_survive_json():
    sec = ExplanationsSection(methods=(
        _method("ig", {"sanity": 0.1, "data_sanity": 0.7}, {"sanity": True, "data_sanity": False}),
        _method("saliency", {"sanity": 0.2}, {"sanity": True})))

    rows = ExplanationsSection.from_dict(sec.to_dict()).sanity_rows()

    assert rows == (SanityRow("ig", 0.1, True, 0.7, False),
                    SanityRow("saliency", 0.2, True, None, None))
    assert [sanity_cell(r.data_correlation, r.data_passed) for r in rows] == ["0.70 (fail)",
                                                                            "not run"]
    assert sanity_cell(0.1, True) == "0.10 (pass)"


def test_no_rows_when_no_method_ran_the_data_test():
    sec = ExplanationsSection(methods=(_method("ig", {"sanity": 0.1}, {"sanity": True}),))

    assert sec.sanity_rows() == ()


def test_html_shows_the_table_only_with_the_data_test():
    from explain.report.html import _explanations

    both = ExplanationsSection(methods=(
        _method("ig", {"sanity": 0.1, "data_sanity": 0.05}, {"sanity": True, "data_sanity": True}),))
    model_only = ExplanationsSection(methods=(_method("ig", {"sanity": 0.1}, {"sanity": True}),))

    html = _explanations(both)

    assert ("<h3>Sanity checks (Adebayo et al. 2018; median rank correlation with the original "
            "map, low passes)</h3>") in html
    assert "<td>0.10 (pass)</td><td>0.05 (pass)</td>" in html
    assert "Sanity checks" not in _explanations(model_only)
