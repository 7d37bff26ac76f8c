"""The audit stages that ask four questions of a model on data, one function each: are its
probabilities honest (``calibration``), is it better than a shallow model
(``shallow-baseline``), does it hold under corrupted inputs (``robustness``), and does the
evaluated data look like the reference data (``distribution-shift``).

Each stage measures a typed section, then the check grades that same value
(``Check.run(CheckContext(<field>=section))``); a stage whose check was not selected returns
an unavailable section and no finding.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from explain._core import tensors
from explain.auditing import _data
from explain.auditing.baselines import baseline_section
from explain.auditing.calibration import calibration_section
from explain.auditing.robustness import robustness_section
from explain.auditing.sections import (
    CalibrationSection,
    DistributionShiftSection,
    RobustnessSection,
    Section,
    ShallowBaselineSection,
)
from explain.auditing.shift import outputs_and_features, shift_section
from explain.card import Modality
from explain.findings import Finding, Severity

__all__ = ["QUESTIONS", "Question", "QuestionInputs", "HeldOut", "held_out", "run_question"]


@dataclass(frozen=True)
class HeldOut:
    """Labelled inputs the question stages read besides the evaluated data."""

    x: torch.Tensor
    y: torch.Tensor | None


def held_out(data: Any, max_samples: int) -> HeldOut | None:
    """``data`` as tensors (``None`` when not given)."""
    if data is None:
        return None
    x, y = _data.collect(data, max_samples)
    return HeldOut(x, y)


@dataclass(frozen=True)
class QuestionInputs:
    """What every question stage may read: the evaluated model, data and logits, and held-out
    data (``None`` where not given)."""

    net: nn.Module
    x: torch.Tensor
    y: torch.Tensor | None
    logits: torch.Tensor
    modality: Modality
    names: tuple[str, ...]
    val: HeldOut | None = None
    train: HeldOut | None = None


@dataclass(frozen=True)
class Question:
    """One stage: its name, the check that grades it, its section type and the context field."""

    stage: str
    check: str
    section: type[Section]
    field: str
    measure: Callable[[QuestionInputs], Section]


def _calibration(inp: QuestionInputs) -> Section:
    if inp.y is None:
        return CalibrationSection.unavailable("No labelled data was given: calibration needs "
                                              "labels. Pass data=(inputs, labels).")
    v_logits = v_y = None
    if inp.val is not None and inp.val.y is not None:
        v_logits = tensors.predict(inp.net, inp.val.x, owner="the calibration check")
        v_y = inp.val.y
    return calibration_section(inp.logits, inp.y, v_logits, v_y)


def _baseline(inp: QuestionInputs) -> Section:
    train = inp.train
    if inp.y is None or train is None or train.y is None:
        return ShallowBaselineSection.unavailable(
            "No training data was given: the shallow baselines are fitted on it. Pass "
            "train_data=(inputs, labels) to explain.audit (zoo runs pass their training split).")
    return baseline_section(inp.net, (train.x, train.y), (inp.x, inp.y), inp.modality)


def _robustness(inp: QuestionInputs) -> Section:
    if inp.y is None:
        return RobustnessSection.unavailable("No labelled data was given: robustness needs "
                                             "labels. Pass data=(inputs, labels).")
    return robustness_section(inp.net, inp.x, inp.y, inp.modality)


def _shift(inp: QuestionInputs, n: int = 500) -> Section:
    if inp.val is None:
        return DistributionShiftSection.unavailable(
            "No reference data was given. Pass val_data=... (data like the training data) to "
            "explain.audit, or call explain.drift(model, reference, current).")
    g = torch.Generator().manual_seed(0)
    ref_x = inp.val.x[torch.randperm(inp.val.x.shape[0], generator=g)[:n]]
    cur_x = inp.x[torch.randperm(inp.x.shape[0], generator=g)[:n]]
    return shift_section(outputs_and_features(inp.net, ref_x),
                         outputs_and_features(inp.net, cur_x), inp.names,
                         reference_name="validation", current_name="evaluated")


#: The question stages, in audit order.
QUESTIONS: tuple[Question, ...] = (
    Question("calibration", "calibration", CalibrationSection, "calibration", _calibration),
    Question("baseline", "shallow-baseline", ShallowBaselineSection, "baseline", _baseline),
    Question("robustness", "robustness", RobustnessSection, "robustness", _robustness),
    Question("shift", "distribution-shift", DistributionShiftSection, "shift", _shift),
)


def run_question(q: Question, selected: bool, inputs: QuestionInputs | None,
                 thresholds: Mapping[str, float]) -> tuple[Section, Finding | None]:
    """Measure ``q``'s section on ``inputs`` and grade it.

    ``inputs is None`` (no data) gives an unavailable section and the check's SKIPPED
    finding; a check that was not selected gives an unavailable section and no finding.
    """
    from explain.checks.base import CHECKS, CheckContext

    if not selected:
        return q.section.unavailable(f"Not run: the audit's checks did not include "
                                     f"{q.check!r}."), None
    if inputs is None:
        sec: Section = q.section.unavailable("No data was given. Pass data=(inputs, labels) "
                                             "to explain.audit.")
    else:
        try:
            sec = q.measure(inputs)
        except Exception as exc:  # noqa: BLE001 - one broken measurement must not sink the audit
            why = f"{type(exc).__name__}: {exc}"
            return q.section.unavailable(f"Could not be measured ({why})."), Finding(
                q.check, Severity.ERROR, f"The {q.check} check could not run: {why}",
                {"error": type(exc).__name__, "message": str(exc), "first_step": None,
                 "first_epoch": None},
                "Check that the data fit the model; if they do, please report this.")
    measured: dict[str, Any] = {q.field: sec}
    context = CheckContext(thresholds=dict(thresholds), **measured)
    return sec, CHECKS.get(q.check)().run(context)
