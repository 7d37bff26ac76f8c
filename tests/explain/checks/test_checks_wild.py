"""The wild suite (benchmarks/_wild.py): hand-written training loops, diagnosed.

Reduced-size pathologies run by default (each trains in well under a second); the full suite,
healthy runs included, is marked slow. A planted pathology must be found by its check at WARN or
FAIL; a healthy run must have no WARN/FAIL from the core checks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from explain.checks import diagnose
from explain.findings import Severity

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import _wild  # noqa: E402

CORE = ("overfitting", "vanishing-gradients", "exploding-gradients", "non-finite", "dead-units",
        "saturation", "unstable-training")
#: planted pathologies that show in a fraction of their epochs (name -> fraction); the
#: diverging run needs 5 epochs: with fewer records unstable-training is SKIPPED
FAST = {"diverge-sgd-lr": 0.5, "exploding-relu-rnn": 0.3, "vanishing-deep-sigmoid": 0.3,
        "vanishing-deep-tanh": 0.3, "dead-relu-bias": 0.3, "dead-relu-huge-step": 0.3,
        "saturated-tanh": 0.3}


def flagged(case: _wild.Case, scale: float) -> set[str]:
    r = _wild.run_case(case, scale)
    return {f.check for f in diagnose(r.history, r.model)
            if Severity.WARN <= f.severity <= Severity.FAIL}


def by_name(name: str) -> _wild.Case:
    return next(c for c in _wild.CASES if c.name == name)


def test_the_suite_has_the_promised_shape():
    healthy = [c for c in _wild.CASES if not c.expected]
    assert len(_wild.CASES) >= 24 and len(healthy) >= len(_wild.CASES) / 2
    assert {e for c in _wild.CASES for e in c.expected} == {
        "overfitting", "unstable-training", "exploding-gradients", "vanishing-gradients",
        "dead-units", "saturation"}
    assert len({c.name for c in _wild.CASES}) == len(_wild.CASES)


@pytest.mark.parametrize("name", sorted(FAST))
def test_a_planted_pathology_is_found_at_reduced_size(name):
    case = by_name(name)
    assert set(case.expected) <= flagged(case, FAST[name])


@pytest.mark.slow
@pytest.mark.parametrize("case", _wild.CASES, ids=lambda c: c.name)
def test_every_wild_case_at_full_size(case):
    found = flagged(case, 1.0)
    if case.expected:
        assert set(case.expected) <= found
    else:
        assert not found & set(CORE)
