"""A model wrapper that records the rows of every forward pass (shared by the tests that count
the passes an attribution runs)."""

from __future__ import annotations

import torch
from torch import nn


class CountRows(nn.Module):
    """Wraps ``model`` and records the rows of every forward call in ``rows`` (only the calls
    with gradients on when ``grad_only``)."""

    def __init__(self, model: nn.Module, grad_only: bool = False) -> None:
        super().__init__()
        self.model, self.grad_only, self.rows = model, grad_only, []

    def forward(self, x):
        if torch.is_grad_enabled() or not self.grad_only:
            self.rows.append(int(x.shape[0]))
        return self.model(x)
