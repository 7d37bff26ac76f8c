"""benchmarks/diagnosis.py: its preset variants (the speech pathologies) are well-formed, and
(slow) each is diagnosed with its planted id at WARN or FAIL."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import torch

import zoo
from explain.checks import list_checks
from explain.findings import Severity
from zoo.config import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import diagnosis  # noqa: E402

VARIANTS = diagnosis.VARIANTS


def test_every_variant_names_a_preset_a_check_and_only_known_settings():
    names = [v.name for v in VARIANTS]
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert len(set(names)) == len(names)
    assert not set(names) & set(zoo.list_presets())
    assert {v.preset for v in VARIANTS} == {"cnn-speech"}
    for v in VARIANTS:
        assert zoo.get_preset(v.preset).dataset == "spoken-digits"
        assert v.expected and set(v.expected) <= set(list_checks())
        assert set(v.overrides) - {"model_kwargs", "dataset_options"} <= fields


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_each_speech_variant_is_diagnosed_with_its_planted_id(variant):
    torch.set_num_threads(1)
    result = diagnosis.train_and_diagnose(variant.name, fast=False, quiet=True)
    found = {c for c, f in result["findings"].items()
             if Severity.WARN <= f.severity <= Severity.FAIL}
    assert result["expected"] == list(variant.expected)
    assert set(variant.expected) <= found
