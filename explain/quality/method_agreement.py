"""Agreement between attribution methods: median per-sample Spearman rank correlation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from explain._core.tensors import infer_modality
from explain.attribution.result import Attribution
from explain.errors import DataMismatchError, InvalidInputError, InvalidTypeError
from explain.quality._common import attribution_values, median, real_mask
from explain.quality._common import spearman as _spearman

__all__ = ["agreement"]


def agreement(attributions: Sequence[Attribution], *, use_abs: bool = False) -> np.ndarray:
    """Matrix of agreement between methods computed on the same inputs.

    Entry ``[i, j]`` is the median over samples of the Spearman rank correlation between the maps
    of ``attributions[i]`` and ``attributions[j]`` (real elements only: padding is left out);
    the diagonal is 1, the matrix is symmetric, NaN where a map is constant.

    Parameters
    ----------
    attributions : two or more :class:`explain.Attribution` on the same inputs.
    use_abs : compare absolute maps (where the evidence is) instead of signed maps.

    Returns
    -------
    numpy.ndarray
        ``[M, M]`` float, rows and columns in the order of ``attributions``.

    Examples
    --------
    >>> import torch
    >>> from explain import Attribution
    >>> x, t = torch.randn(4, 5), torch.zeros(4, dtype=torch.long)
    >>> a = Attribution(values=x * 2, method="a", target=t, inputs=x)
    >>> b = Attribution(values=-x, method="b", target=t, inputs=x)
    >>> agreement([a, b]).round(2).tolist()
    [[1.0, -1.0], [-1.0, 1.0]]
    """
    attrs = list(attributions)
    if not attrs:
        raise InvalidInputError(
            "The 'attributions' parameter of agreement must hold at least one Attribution. "
            "Got an empty sequence instead.")
    for a in attrs:
        if not isinstance(a, Attribution):
            raise InvalidTypeError(
                f"The 'attributions' parameter of agreement must hold explain.Attribution "
                f"objects. Got {type(a).__name__} instead.")
    first = attrs[0]
    for a in attrs[1:]:
        same = a.inputs.shape == first.inputs.shape and torch.allclose(
            a.inputs.detach().cpu().double(), first.inputs.detach().cpu().double())
        if not same:
            raise DataMismatchError(
                f"agreement compares methods on the same inputs, but {a.method!r} explains inputs "
                f"of shape {tuple(a.inputs.shape)} that differ from those of {first.method!r} "
                f"({tuple(first.inputs.shape)}). Compute every attribution on the same batch.")
    n = first.inputs.shape[0]
    x = first.inputs.detach().cpu()
    pad = 0 if first.pad_id is None else first.pad_id
    mask = real_mask(x, infer_modality(x, owner="agreement"), pad).reshape(n, -1).numpy()
    maps = [attribution_values(a, n).reshape(n, -1).numpy() for a in attrs]
    if use_abs:
        maps = [np.abs(m) for m in maps]
    m = len(maps)
    out = np.eye(m)
    for i in range(m):
        for j in range(i + 1, m):
            out[i, j] = out[j, i] = median(
                [_spearman(maps[i][k][mask[k]], maps[j][k][mask[k]]) for k in range(n)])
    return out
