"""What the shap-based methods share: a one-logit wrapper and a loop over target groups."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from explain.attribution.base import Chunk

__all__ = ["Select", "groups", "run_groups"]


class Select(nn.Module):
    """``forward(x) = f(x, *args)[:, [cls]]``: one output, so shap explains only the target.

    Tensors in ``args`` with batch dimension 1 are expanded to the batch shap passes in.
    """

    def __init__(self, forward: Callable[..., torch.Tensor], cls: int, args: tuple = ()) -> None:
        super().__init__()
        self.f = forward
        self.cls = int(cls)
        self.args = args

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        args = tuple(a.expand(x.shape[0], *a.shape[1:]) if isinstance(a, torch.Tensor)
                     and a.dim() > 0 and a.shape[0] == 1 else a for a in self.args)
        return self.f(x, *args)[:, self.cls:self.cls + 1]


def groups(chunk: Chunk) -> Iterator[tuple[torch.Tensor, int, tuple]]:
    """Yield (sample indices, class, args) to explain together.

    Without extra forward args, every sample with the same target goes in one call; with
    them (token ids, masks), each sample is explained alone with its own args.
    """
    n = chunk.x.shape[0]
    if not chunk.args:
        for cls in torch.unique(chunk.target).tolist():
            yield (chunk.target == cls).nonzero().flatten(), int(cls), ()
        return
    for i in range(n):
        args = tuple(a[i:i + 1] if isinstance(a, torch.Tensor) and a.dim() > 0
                     and a.shape[0] == n else a for a in chunk.args)
        yield torch.tensor([i]), int(chunk.target[i]), args


def run_groups(chunk: Chunk, explain: Callable[[torch.Tensor, int, tuple], np.ndarray],
               like: torch.Tensor) -> torch.Tensor:
    """Fill a tensor shaped ``like`` with ``explain(indices, cls, args)`` for every group."""
    out = torch.zeros(like.shape, dtype=torch.float32, device=like.device)
    for idx, cls, args in groups(chunk):
        vals = np.asarray(explain(idx, cls, args), dtype=np.float32)
        out[idx.to(out.device)] = torch.from_numpy(vals).reshape(
            (len(idx), *like.shape[1:])).to(out.device)
    return out

