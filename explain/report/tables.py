"""The rows of the four question sections (calibration, shallow baseline, robustness,
distribution shift), shared by the HTML and Markdown renderers: each renderer escapes the
cells and draws the table in its own format. Cells are raw text here (not yet escaped)."""

from __future__ import annotations

from dataclasses import dataclass

from explain.auditing.sections import (
    CalibrationSection,
    DistributionShiftSection,
    RobustnessSection,
    Section,
    ShallowBaselineSection,
)

__all__ = ["Table", "question_tables", "sanity_cell"]


@dataclass(frozen=True)
class Table:
    """A lead sentence, a header and rows of raw text cells."""

    lead: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def _f(v: float | None, fmt: str = "{:.3f}") -> str:
    return "n/a" if v is None else fmt.format(v)


def sanity_cell(correlation: float | None, passed: bool | None) -> str:
    """``"0.04 (pass)"``, ``"0.97 (fail)"`` or ``"not run"``: one sanity check's cell."""
    if correlation is None:
        return "not run"
    return f"{correlation:.2f} ({'pass' if passed else 'fail'})"


def _calibration(sec: CalibrationSection) -> list[Table]:
    after = f"after temperature scaling (T = {_f(sec.temperature, '{:.3g}')})"
    rows = (("ECE (15 bins)", f"{_f(sec.ece)} [{_f(sec.ece_low)}, {_f(sec.ece_high)}]",
             _f(sec.ece_after)),
            ("MCE", _f(sec.mce), _f(sec.mce_after)), ("NLL", _f(sec.nll), _f(sec.nll_after)),
            ("accuracy", _f(sec.accuracy), _f(sec.accuracy_after)),
            ("mean confidence", _f(sec.confidence), ""))
    return [Table(f"{sec.n} samples; the temperature was fitted on {sec.fit_on}. The interval "
                  "is the 95% bootstrap interval of the ECE.", ("", "before", after), rows)]


def _baseline(sec: ShallowBaselineSection) -> list[Table]:
    rows = tuple((r.name, _f(r.accuracy), f"{r.parameters:,}", _f(r.latency_ms, "{:.3g}"),
                  _f(r.fit_seconds, "{:.2f}")) for r in (sec.deep, *sec.baselines) if r)
    lead = (f"Fitted on {sec.n_train} training samples, scored on the same {sec.n_test} test "
            f"samples. Deep minus {sec.best}: {_f(sec.margin, '{:+.3f}')} (paired bootstrap "
            f"95% interval {_f(sec.margin_low, '{:+.3f}')} to {_f(sec.margin_high, '{:+.3f}')}).")
    return [Table(lead, ("model", "test accuracy", "parameters", "ms per sample", "fit s"),
                  rows)]


def _robustness(sec: RobustnessSection) -> list[Table]:
    rows = tuple((c.name, c.description, *(f"{a:.3f} ({r:.0%})" for a, r in
                                           zip(c.accuracy, c.relative))) for c in sec.curves)
    return [Table(f"Clean accuracy {_f(sec.clean_accuracy)} on {sec.n} samples (seed "
                  f"{sec.seed}); each cell is the accuracy (share of clean) at that severity.",
                  ("corruption", "what", "1", "2", "3", "4", "5"), rows)]


def _shift(sec: DistributionShiftSection) -> list[Table]:
    tests = tuple((t.name, t.detail, f"{t.statistic:.4g}", f"{t.p_value:.3g}",
                   f"{t.p_adjusted:.3g}") for t in sec.tests)
    classes = tuple((c.name, f"{c.reference:.1%}", f"{c.current:.1%}", f"{c.residual:+.2f}")
                    for c in sec.classes[:5])
    return [Table(f"{sec.n_reference} {sec.reference} vs {sec.n_current} {sec.current} "
                  f"samples; mean confidence {_f(sec.mean_confidence_reference)} vs "
                  f"{_f(sec.mean_confidence_current)}.",
                  ("test", "method", "statistic", "p-value", "Holm-adjusted"), tests),
            Table("Most shifted predicted classes (adjusted standardised residuals):",
                  ("class", "reference share", "current share", "residual"), classes)]


def question_tables(sec: Section) -> list[Table] | None:
    """The tables of a question section (``None`` for other section types)."""
    if isinstance(sec, CalibrationSection):
        return _calibration(sec)
    if isinstance(sec, ShallowBaselineSection):
        return _baseline(sec)
    if isinstance(sec, RobustnessSection):
        return _robustness(sec)
    if isinstance(sec, DistributionShiftSection):
        return _shift(sec)
    return None
