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


def test_learning_curve_flag_stores_the_fit_and_the_check_grades_it(folder, tmp_path, capsys):
    out = tmp_path / "report.json"

    code = audit_cmd.main([str(folder), "--learning-curve", "--samples", "0", "--out", str(out)])

    d = json.loads(out.read_text())
    sec = d["sections"]["data_sufficiency"]
    (finding,) = [f for f in d["findings"] if f["check"] == "data-sufficiency"]
    gain = sec["predicted_gain"]
    assert code == 0      # warnings only, below --fail-on fail
    assert [n for n, _ in sec["curve"]] == [179, 359, 718, 1437]
    assert len(sec["params"]) == 3 and sec["gain_low"] <= gain <= sec["gain_high"]
    assert sec["prediction"].startswith("Doubling the data would help: " if gain > 0.02 else
                                        "Doubling the data is not predicted to help: ")
    assert finding["severity"] == ("warn" if gain > 0.02 else "pass")
    assert f"the power law fitted to the learning curve predicts {gain:+.3f}" in \
        finding["summary"]
    assert sec["prediction"] in capsys.readouterr().err
