"""The shared small models (tests/fixtures/models.py) behave as the tests assume."""

from __future__ import annotations

import torch

from tests.fixtures.models import (
    cases,
)


def test_padding_never_changes_a_prediction():
    # Arrange
    models = cases()
    gru, seq = models["gru"]
    text, ids = models["text"]
    # Act
    more_frames = torch.cat([seq, torch.zeros(3, 3, 3)], 1)
    more_pads = torch.cat([ids, torch.zeros(2, 2, dtype=torch.long)], 1)
    # Assert
    assert torch.allclose(gru(seq), gru(more_frames), atol=1e-6)
    assert torch.allclose(text(ids), text(more_pads), atol=1e-5)
