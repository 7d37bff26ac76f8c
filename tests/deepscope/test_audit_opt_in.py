"""`deepscope audit RUN --data-sanity` and `--learning-curve` on a tiny real run folder."""

from __future__ import annotations

import json

import pytest

import zoo
from deepscope.commands import audit as audit_cmd


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "mlp-digits"
    zoo.train(preset="mlp-digits", out=out, epochs=2, progress=False)
    return out


def test_data_sanity_flag_grades_every_method_against_the_permuted_label_twin(folder, tmp_path):
    out = tmp_path / "report.json"

    code = audit_cmd.main([str(folder), "--data-sanity", "--samples", "2", "--out", str(out),
                           "-q"])

    d = json.loads(out.read_text())
    methods = d["sections"]["explanations"]["methods"]
    assert code == 0
    assert [m["method"] for m in methods] == ["integrated_gradients", "saliency"]
    assert all(m["quality"]["metrics"][-1] == "data_sanity" for m in methods)
    assert all(m["quality"]["passed"]["data_sanity"] is True for m in methods)
    assert d["timings"]["data_sanity_training"] > 0


def test_without_the_flag_no_twin_is_trained(folder, tmp_path):
    out = tmp_path / "report.json"

    audit_cmd.main([str(folder), "--samples", "2", "--out", str(out), "-q"])

    d = json.loads(out.read_text())
    assert "data_sanity_training" not in d["timings"]
    assert all("data_sanity" not in m["quality"]["metrics"]
               for m in d["sections"]["explanations"]["methods"])
