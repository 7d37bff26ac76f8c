"""Shared test set-up: deterministic, one intra-op thread.

CI has 2 shared cores; with 2 intra-op threads small models slow down by 10-100x whenever the
other core is busy, so tests use one. Property tests (hypothesis) have no deadline (a shared
machine makes wall time meaningless) and, under CI, a fixed seed: a CI run tests the same
examples every time, and a failure found locally is kept in .hypothesis/ and replayed.
"""

import os

import pytest
import torch
from hypothesis import settings

settings.register_profile("deepscope", deadline=None)
settings.register_profile("deepscope-ci", deadline=None, derandomize=True,
                          database=None, print_blob=True)
settings.load_profile("deepscope-ci" if os.environ.get("CI") else "deepscope")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Every test module starts with one intra-op thread (tiny models run far faster on one
    when the cores are shared: a 150-step MLP training took 36 s with 2 threads under load,
    0.3 s with 1), whatever an earlier module set; the count is restored after the module."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
