"""Quality.to_dict / from_dict go through the shared strict-JSON codec."""

from __future__ import annotations

import json
import math

import pytest

from explain.errors import CorruptRunError
from explain.findings import Severity
from explain.quality import Quality, Verdict


def test_non_finite_values_round_trip_exactly_through_strict_json():
    q = Quality(method="m", verdict=Verdict.DOUBTFUL, summary="s", n_samples=2,
                metrics=("infidelity",),
                per_sample={"infidelity": [float("inf"), 0.5]},
                medians={"infidelity": float("nan"), "sensitivity": float("-inf")},
                curves={"fraction": [0.0, 1.0]})

    text = json.dumps(q.to_dict(), allow_nan=False)
    back = Quality.from_dict(json.loads(text))

    assert back.per_sample["infidelity"][0] == math.inf
    assert back.per_sample["infidelity"][1] == 0.5
    assert math.isnan(back.medians["infidelity"])
    assert back.medians["sensitivity"] == -math.inf
    assert (back.verdict, back.metrics, back.curves) == (Verdict.DOUBTFUL, ("infidelity",),
                                                          {"fraction": [0.0, 1.0]})


def test_non_finite_values_are_written_as_null_with_their_json_pointer():
    q = Quality(method="m", verdict="doubtful", summary="s", n_samples=1,
                medians={"sanity": float("nan")})

    d = q.to_dict()

    assert d["medians"] == {"sanity": None}
    assert d["nonfinite_values"] == [{"path": "/medians/sanity", "value": "nan"}]
    assert "nonfinite_values" not in Quality(method="m", verdict="trustworthy", summary="s",
                                             n_samples=1).to_dict()


def test_dicts_written_before_the_codec_still_load():
    old = {"method": "m", "verdict": "fails-sanity", "summary": "s", "n_samples": 3,
           "metrics": ["sanity"], "medians": {"sanity": None}, "passed": {"sanity": False}}

    q = Quality.from_dict(old)

    assert q.verdict is Verdict.FAILS_SANITY and q.verdict.severity is Severity.FAIL
    assert q.medians == {"sanity": None} and q.metrics == ("sanity",)


@pytest.mark.parametrize(("data", "message"), [
    (["not", "a", "dict"], "A Quality must be read from a dict (Quality.to_dict()). Got list "
                           "instead."),
    ({"method": "m"}, "The Quality dict lacks ['verdict', 'summary', 'n_samples']. Re-create "
                      "it with Quality.to_dict()."),
])
def test_malformed_dicts_raise_corrupt_run_error(data, message):
    with pytest.raises(CorruptRunError) as info:
        Quality.from_dict(data)

    assert str(info.value) == message
