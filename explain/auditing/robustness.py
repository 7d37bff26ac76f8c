"""Accuracy under the corruptions of :mod:`explain.auditing.corruptions`, severity 1..5,
relative to clean accuracy, on a seeded subset of a few hundred samples."""

from __future__ import annotations

import torch
from torch import nn

from explain._core import tensors
from explain.auditing.corruptions import CORRUPTIONS, corrupt
from explain.auditing.sections.robustness import CorruptionCurve, RobustnessSection
from explain.card import Modality

__all__ = ["robustness_section", "SEVERITIES"]

SEVERITIES = (1, 2, 3, 4, 5)
_OWNER = "the robustness check"


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((tensors.predict(model, x, owner=_OWNER).argmax(1) == y).double().mean())


def robustness_section(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                       modality: Modality, *, n: int = 300, seed: int = 0) -> RobustnessSection:
    """Accuracy of ``model`` on ``n`` seeded samples of ``(x, y)`` under each corruption.

    Examples
    --------
    >>> net = torch.nn.Linear(6, 2)
    >>> x = torch.randn(50, 6); y = net(x).argmax(1)
    >>> sec = robustness_section(net, x, y, Modality.TABULAR, n=50)
    >>> sec.clean_accuracy, [c.name for c in sec.curves], len(sec.curves[0].accuracy)
    (1.0, ['noise', 'feature dropout'], 5)
    """
    if x.shape[0] > n:
        pick = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
        x, y = x[pick], y[pick]
    clean = _accuracy(model, x, y)
    curves = []
    for name, (_fn, description) in CORRUPTIONS[modality].items():
        accs = tuple(_accuracy(model, corrupt(x, modality, name, s, seed=seed), y)
                     for s in SEVERITIES)
        rel = tuple(a / clean if clean > 0 else 0.0 for a in accs)
        curves.append(CorruptionCurve(name, accs, rel, description))
    return RobustnessSection(modality=modality.value, n=int(x.shape[0]), seed=seed,
                             clean_accuracy=clean, curves=tuple(curves))
