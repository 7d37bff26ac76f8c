"""Input corruptions per modality at five severities (in the spirit of ImageNet-C and
MNIST-C; Hendrycks & Dietterich 2019, Mu & Gilmer 2019), seeded and model-agnostic.

Each corruption is ``fn(x, severity, generator) -> x'`` for a batch ``x`` and a severity in
1..5; :data:`CORRUPTIONS` maps a modality to its corruptions (name -> (fn, description)).
Scales are relative to the data (its range or per-channel std), so they carry over to inputs
that are not in [0, 1]. Sequence padding (all-zero frames) is left as padding.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from explain.card import Modality

__all__ = ["CORRUPTIONS", "corrupt", "Corruption"]

Corruption = Callable[[torch.Tensor, int, torch.Generator], torch.Tensor]


def _level(values: tuple[float, ...], severity: int) -> float:
    return values[severity - 1]


# -- images [n, C, H, W] ------------------------------------------------------------------------
def _noise(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    span = float(x.max() - x.min()) or 1.0
    sigma = _level((0.08, 0.12, 0.18, 0.26, 0.38), s) * span  # ImageNet-C gaussian_noise
    return x + sigma * torch.randn(x.shape, generator=g, dtype=x.dtype)


def _blur(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    sigma = _level((0.5, 0.75, 1.0, 1.5, 2.0), s)  # pixels (ImageNet-C's 1-6 scaled to 28 px)
    r = max(1, math.ceil(2 * sigma))
    k = torch.exp(-torch.arange(-r, r + 1, dtype=x.dtype) ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    c = x.shape[1]
    out = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).repeat(c, 1,
                                                                                        1, 1),
                   groups=c)
    return F.conv2d(F.pad(out, (0, 0, r, r), mode="replicate"),
                    k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def _contrast(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    c = _level((0.4, 0.3, 0.2, 0.1, 0.05), s)  # ImageNet-C contrast
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * c + mean


def _affine(x: torch.Tensor, degrees: float, shift: float, g: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    angle = (torch.rand(n, generator=g, dtype=x.dtype) * 2 - 1) * math.radians(degrees)
    move = (torch.rand(n, 2, generator=g, dtype=x.dtype) * 2 - 1) * shift
    theta = torch.zeros(n, 2, 3, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 1] = angle.cos(), -angle.sin()
    theta[:, 1, 0], theta[:, 1, 1] = angle.sin(), angle.cos()
    theta[:, :, 2] = move
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    background = x.amin(dim=(1, 2, 3), keepdim=True)
    return F.grid_sample(x - background, grid, align_corners=False) + background


def _rotate(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    return _affine(x, _level((5, 10, 15, 20, 30), s), 0.0, g)


def _translate(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    # fraction of the half-width: 0.05 of 28 px is ~0.7 px ... 0.3 is ~4 px
    return _affine(x, 0.0, _level((0.05, 0.1, 0.15, 0.2, 0.3), s), g)


# -- sequences [n, T, C] ------------------------------------------------------------------------
def _seq_noise(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    frames = x.flatten(0, 1)
    frames = frames[(frames != 0).any(-1)] if bool((frames != 0).any()) else frames
    std = frames.std(0).clamp_min(1e-8)  # per channel, over real (non-padding) frames
    sigma = _level((0.1, 0.25, 0.5, 0.75, 1.0), s)
    return x + sigma * std * torch.randn(x.shape, generator=g, dtype=x.dtype)


def _time_warp(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    """Play back ``factor`` times slower (linear interpolation), cut to the same length."""
    factor = _level((1.05, 1.1, 1.2, 1.3, 1.5), s)
    t = x.shape[1]
    pos = torch.arange(t, dtype=x.dtype) / factor
    lo = pos.floor().long().clamp(max=t - 1)
    hi = (lo + 1).clamp(max=t - 1)
    w = (pos - lo.to(x.dtype)).view(1, -1, 1)
    return x[:, lo] * (1 - w) + x[:, hi] * w


def _dropped_frames(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    """A fraction of frames is lost and the previous frame held in its place."""
    p = _level((0.05, 0.1, 0.2, 0.3, 0.5), s)
    drop = torch.rand(x.shape[:2], generator=g) < p
    drop[:, 0] = False
    idx = torch.arange(x.shape[1]).expand(x.shape[0], -1).clone()
    idx[drop] = 0
    idx = torch.cummax(idx, dim=1).values
    return torch.gather(x, 1, idx.unsqueeze(-1).expand_as(x))


def _channel_dropout(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    p = _level((0.05, 0.1, 0.2, 0.3, 0.5), s)
    keep = torch.rand(x.shape[0], 1, x.shape[2], generator=g) >= p
    return x * keep.to(x.dtype)


# -- text [n, L] token ids (0 = padding) ----------------------------------------------------------
def _compact(ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Keep the marked tokens, shifted left, padded with 0."""
    out = torch.zeros_like(ids)
    for i in range(ids.shape[0]):
        row = ids[i][keep[i]]
        out[i, : row.numel()] = row
    return out


def _token_dropout(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    p = _level((0.05, 0.1, 0.2, 0.3, 0.5), s)
    return _compact(x, (x != 0) & (torch.rand(x.shape, generator=g) >= p))


def _token_swaps(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    """Character swaps approximated on token ids: a fraction of adjacent tokens swapped."""
    p = _level((0.05, 0.1, 0.2, 0.3, 0.5), s)
    out = x.clone()
    flips = torch.rand(x.shape[0], max(0, x.shape[1] - 1), generator=g) < p
    for j in range(0, x.shape[1] - 1):
        m = flips[:, j] & (out[:, j] != 0) & (out[:, j + 1] != 0)
        out[m, j], out[m, j + 1] = out[m, j + 1].clone(), out[m, j].clone()
    return out


def _shuffle(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    """Word order shuffled within windows of 2, 3, 4, 6 tokens, then the whole text."""
    w = (2, 3, 4, 6, x.shape[1])[s - 1]
    out = x.clone()
    for i in range(x.shape[0]):
        n = int((x[i] != 0).sum())
        for a in range(0, n, w):
            b = min(n, a + w)
            out[i, a:b] = x[i, a:b][torch.randperm(b - a, generator=g)]
    return out


# -- tabular [n, d] ---------------------------------------------------------------------------------
def _tab_noise(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    sigma = _level((0.05, 0.1, 0.2, 0.3, 0.5), s)
    return x + sigma * x.std(0).clamp_min(1e-8) * torch.randn(x.shape, generator=g, dtype=x.dtype)


def _feature_dropout(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    p = _level((0.05, 0.1, 0.2, 0.3, 0.5), s)
    lost = torch.rand(x.shape, generator=g) < p
    return torch.where(lost, x.mean(0, keepdim=True).expand_as(x), x)


#: modality -> corruption name -> (function, what it does at severities 1..5).
CORRUPTIONS: dict[Modality, dict[str, tuple[Corruption, str]]] = {
    Modality.IMAGE: {
        "gaussian noise": (_noise, "sigma 0.08-0.38 of the pixel range"),
        "blur": (_blur, "Gaussian blur, sigma 0.5-2 px"),
        "contrast": (_contrast, "contrast x0.4 ... x0.05"),
        "rotation": (_rotate, "random rotation up to 5-30 degrees"),
        "translation": (_translate, "random shift up to 5-30% of the half-width"),
    },
    Modality.SEQUENCE: {
        "noise": (_seq_noise, "Gaussian noise, 0.1-1 of each channel's std"),
        "time warp": (_time_warp, "played back 1.05-1.5x slower"),
        "dropped frames": (_dropped_frames, "5-50% of frames lost (previous frame held)"),
        "channel dropout": (_channel_dropout, "5-50% of channels zeroed"),
    },
    Modality.TEXT: {
        "token dropout": (_token_dropout, "5-50% of tokens deleted"),
        "token swaps": (_token_swaps, "5-50% of adjacent token pairs swapped (character "
                                      "swaps approximated on tokens)"),
        "word-order shuffle": (_shuffle, "shuffled within windows of 2, 3, 4, 6 tokens, "
                                         "then all"),
    },
    Modality.TABULAR: {
        "noise": (_tab_noise, "Gaussian noise, 0.05-0.5 of each feature's std"),
        "feature dropout": (_feature_dropout, "5-50% of values replaced by the feature mean"),
    },
}


def corrupt(x: torch.Tensor, modality: Modality, name: str, severity: int, *,
            seed: int = 0) -> torch.Tensor:
    """``x`` corrupted by ``name`` at ``severity`` (1..5), seeded.

    Examples
    --------
    >>> x = torch.rand(2, 1, 8, 8)
    >>> corrupt(x, Modality.IMAGE, "contrast", 5).std() < x.std()
    tensor(True)
    """
    fn = CORRUPTIONS[modality][name][0]
    g = torch.Generator().manual_seed(seed * 1009 + severity)
    out = fn(x.float() if x.is_floating_point() else x, severity, g)
    if modality == Modality.SEQUENCE:  # padding frames (all zero) stay padding
        out = out * (x != 0).any(-1, keepdim=True).to(out.dtype)
    return out
