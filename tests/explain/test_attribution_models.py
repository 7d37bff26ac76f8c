"""Small models shared by the attribution tests (each one a known trouble spot), and a check
that they behave as the tests assume."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TinyCNN(nn.Module):
    """Conv + BatchNorm + residual connection; ``[B, 1, 8, 8]`` -> 3 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.r1 = nn.ReLU()
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.r2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        h = self.r1(self.bn(self.c1(x)))
        h = self.r2(self.c2(h)) + h
        return self.fc(self.drop(self.pool(h).flatten(1)))


class ReusedAct(nn.Module):
    """One ReLU module called twice."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.act = nn.Linear(4, 8), nn.Linear(8, 3), nn.ReLU()

    def forward(self, x):
        return self.b(self.act(self.a(x))) + self.act(x).sum(1, keepdim=True)


class FunctionalAct(nn.Module):
    """``F.relu`` inside forward: no activation module for DeepLIFT to hook."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.b(F.relu(self.a(x)))


class GRUNet(nn.Module):
    """Packed GRU over ``[B, T, 3]``; trailing all-zero frames are padding."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn, self.head = nn.GRU(3, 8, batch_first=True), nn.Linear(8, 2)

    def forward(self, x):
        lengths = (x != 0).any(-1).sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True,
                                                   enforce_sorted=False)
        _, h = self.rnn(packed)
        return self.head(h[-1])


class TextNet(nn.Module):
    """Embedding + transformer encoder with a padding mask derived from the ids."""

    def __init__(self, vocab: int = 20, d: int = 8) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d, padding_idx=0)
        layer = nn.TransformerEncoderLayer(d, 2, 16, dropout=0.0, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Linear(d, 2)

    def forward(self, ids):
        pad = ids == 0
        h = self.enc(self.emb(ids), src_key_padding_mask=pad)
        h = h.masked_fill(pad[..., None], 0).sum(1) / (~pad).sum(1, keepdim=True).clamp(min=1)
        return self.head(h)


class BagNet(nn.Module):
    """Sum of token embeddings + linear: attributions have a closed form."""

    def __init__(self, vocab: int = 20, d: int = 4) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d, padding_idx=0)
        self.fc = nn.Linear(d, 2)

    def forward(self, ids):
        return self.fc(self.emb(ids).sum(1))


class MaskedMLP(nn.Module):
    """Takes a mask as a second forward argument (``additional_forward_args``)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x, mask):
        return self.fc(x * mask)


class Rounding(nn.Module):
    """A non-differentiable step: the gradient is zero everywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 3)

    def forward(self, x):
        return self.a(torch.round(x * 2) / 2)


class IntTabular(nn.Module):
    """Integer features without an embedding layer."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 2)

    def forward(self, x):
        return self.a(x.float())


def cases() -> dict[str, tuple[nn.Module, torch.Tensor]]:
    """name -> (eval-mode model, small seeded batch)."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    seq = torch.cat([torch.randn(3, 4, 3, generator=g), torch.zeros(3, 2, 3)], 1)
    seq[1, 3] = 0  # a shorter sequence
    ids = torch.tensor([[3, 4, 5, 0, 0], [6, 7, 1, 2, 0]])
    return {
        "cnn": (TinyCNN().eval(), torch.randn(3, 1, 8, 8, generator=g)),
        "reused": (ReusedAct().eval(), torch.randn(3, 4, generator=g)),
        "functional": (FunctionalAct().eval(), torch.randn(3, 4, generator=g)),
        "gru": (GRUNet().eval(), seq),
        "text": (TextNet().eval(), ids),
        "bag": (BagNet().eval(), ids),
    }


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
