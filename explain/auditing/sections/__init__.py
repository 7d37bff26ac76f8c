"""The typed sections of an audit report, one class each, and their registry.

A section is a frozen :class:`Section` subclass with ``to_dict``/``from_dict``; the report keeps
one of each type in :data:`SECTIONS`, in this order. A new section (a shallow baseline,
robustness, drift, calibration ...) is one more class here plus its stage in the auditor; the
report, its JSON and the conformance tests pick it up from :data:`SECTIONS`.

Examples
--------
>>> sec = PerformanceSection(n=4, accuracy=0.75, class_names=("cat", "dog"))
>>> PerformanceSection.from_dict(sec.to_dict()) == sec, sec.name
(True, 'performance')
>>> TrainingSection.unavailable("No history.").available
False
"""

from explain.auditing.sections._base import Section
from explain.auditing.sections.baseline import BaselineScore, ShallowBaselineSection
from explain.auditing.sections.calibration import CalibrationSection
from explain.auditing.sections.card import CardSection, LayerRow
from explain.auditing.sections.explanations import (
    Agreement,
    ExplainedSample,
    ExplanationsSection,
    MethodResult,
)
from explain.auditing.sections.performance import (
    CalibrationBin,
    ClassMetrics,
    Mistake,
    PerformanceSection,
)
from explain.auditing.sections.robustness import CorruptionCurve, RobustnessSection
from explain.auditing.sections.shift import ClassShift, DistributionShiftSection, ShiftTest
from explain.auditing.sections.training import DataSufficiencySection, TrainingSection

__all__ = ["Section", "SECTIONS", "QUESTION_SECTIONS", "section_type", "TrainingSection", "PerformanceSection",
           "ExplanationsSection", "DataSufficiencySection", "CardSection", "ClassMetrics",
           "CalibrationBin", "Mistake", "MethodResult", "ExplainedSample", "Agreement",
           "LayerRow", "CalibrationSection", "ShallowBaselineSection", "BaselineScore",
           "RobustnessSection", "CorruptionCurve", "DistributionShiftSection", "ShiftTest",
           "ClassShift"]

#: Every section type, in report order (the JSON keys are their ``name``).
SECTIONS: tuple[type[Section], ...] = (TrainingSection, PerformanceSection, CalibrationSection,
                                       ShallowBaselineSection, RobustnessSection,
                                       DistributionShiftSection, ExplanationsSection,
                                       DataSufficiencySection, CardSection)

#: The sections that answer the audit's four questions: are its probabilities honest, is deep
#: better than shallow here, does it hold under corruption, does it hold when the data shifts.
QUESTION_SECTIONS: tuple[type[Section], ...] = (CalibrationSection, ShallowBaselineSection,
                                                RobustnessSection, DistributionShiftSection)


def section_type(name: str) -> type[Section] | None:
    """The section class whose :attr:`Section.name` is ``name`` (``None`` if there is none)."""
    return next((s for s in SECTIONS if s.name == name), None)
