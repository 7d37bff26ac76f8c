"""Shared test set-up: deterministic, one intra-op thread.

CI has 2 shared cores; with 2 intra-op threads small models slow down by 10-100x whenever the
other core is busy, so tests use one.
"""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
