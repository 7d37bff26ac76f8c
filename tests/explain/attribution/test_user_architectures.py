"""Architectures users bring, written the way their libraries write them: a torchvision-style
ResNet (BatchNorm, a downsample branch, one ``nn.ReLU(inplace=True)`` used twice per block,
``out += identity``), a timm-style ViT (patch-embedding conv, class token, position embedding,
``F.scaled_dot_product_attention``), BERT through ``transformers`` (a tokenizer batch), and an
LSTM over ``pack_padded_sequence``. Every method of :func:`explain.list_methods` gives finite
values shaped like the input, falls back saying why (``Attribution.method`` differs and the
reason is in ``warnings``), or refuses with a typed error naming the methods that work.
(torchvision itself is not used: its PyPI wheel needs the CUDA build of torch.)"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import explain
from explain.errors import InvalidInputError


# ----------------------------------------------------------------------------- the models
class BasicBlock(nn.Module):
    """torchvision's BasicBlock: one ReLU module applied twice, ``out += identity``."""

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, inplace=True):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True) if inplace else nn.ReLU()
        self.relu2 = self.relu if inplace else nn.ReLU()   # the twin: one module per use
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu2(out)


class ResNet(nn.Module):
    """Stem, a plain block and a strided block with a 1x1 downsample branch; ``[B, 3, 16, 16]``."""

    def __init__(self, num_classes=3, inplace=True):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True) if inplace else nn.ReLU()
        self.layer1 = BasicBlock(4, 4, inplace=inplace)
        down = nn.Sequential(nn.Conv2d(4, 8, 1, 2, bias=False), nn.BatchNorm2d(8))
        self.layer2 = BasicBlock(4, 8, 2, down, inplace=inplace)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class PatchEmbed(nn.Module):
    def __init__(self, img=16, patch=4, chans=3, dim=16):
        super().__init__()
        self.proj = nn.Conv2d(chans, dim, patch, patch)
        self.num_patches = (img // patch) ** 2

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)   # [B, patches, dim]


class Attention(nn.Module):
    def __init__(self, dim, heads=2):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """timm's VisionTransformer in small: patch conv, class token, position embedding."""

    def __init__(self, num_classes=3, dim=16, depth=1):
        super().__init__()
        self.patch_embed = PatchEmbed(dim=dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, self.patch_embed.num_patches + 1, dim) * .02)
        self.blocks = nn.Sequential(*[Block(dim) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + self.pos_embed
        return self.head(self.norm(self.blocks(x))[:, 0])


class PackedLSTM(nn.Module):
    """Token ids ``[B, T]`` (0 = padding) -> packed LSTM -> last hidden state -> logits."""

    def __init__(self, vocab=20, num_classes=2):
        super().__init__()
        self.embedding = nn.Embedding(vocab, 8, padding_idx=0)
        self.lstm = nn.LSTM(8, 8, batch_first=True)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, ids):
        lengths = (ids != 0).sum(1).clamp(min=1).cpu()
        packed = pack_padded_sequence(self.embedding(ids), lengths, batch_first=True,
                                      enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        return self.fc(h[-1])


# ----------------------------------------------------------------------------- the cases
tf = None
try:
    import transformers as tf
except ImportError:  # pragma: no cover - the BERT cases skip below
    pass

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "great", "dull", "film", "play",
         "##ing", "well", "not", "boring"]
ARCHS = ("resnet", "vit", "bert", "lstm")

#: (architecture, method) -> a typed refusal that names the methods that work instead.
REFUSED = {
    ("resnet", "shap_kernel"): "Kernel SHAP fits one weight per feature",
    ("vit", "shap_kernel"): "Kernel SHAP fits one weight per feature",
    ("bert", "grad_cam"): "Grad-CAM needs image inputs",
    ("lstm", "grad_cam"): "Grad-CAM needs image inputs",
}
#: (architecture, method) -> (the method it runs as, the reason given in its warnings).
FALLBACK = {
    ("resnet", "deeplift"): ("integrated_gradients", "modules reused within one forward pass"),
    ("resnet", "shap_deep"): ("shap_gradient", "modules reused within one forward pass"),
    ("vit", "deeplift"): ("integrated_gradients", "layers without a propagation rule"),
    ("vit", "shap_deep"): ("shap_gradient", "layers without a propagation rule"),
    ("bert", "deeplift"): ("integrated_gradients", "layers without a propagation rule"),
    ("bert", "shap_deep"): ("shap_gradient", "cannot propagate through a token lookup"),
    ("lstm", "deeplift"): ("integrated_gradients", "a recurrent layer (RNN/LSTM/GRU)"),
    ("lstm", "shap_deep"): ("shap_gradient", "a recurrent layer (RNN/LSTM/GRU)"),
}


def _settle(model: nn.Module) -> nn.Module:
    """A few training-mode passes so BatchNorm has real running statistics, then eval."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, 16, 16))
    return model.eval()


def make_case(arch: str):
    """(model, inputs, the shape of one score per input element)."""
    torch.manual_seed(0)
    if arch == "resnet":
        x = torch.randn(2, 3, 16, 16)
        return _settle(ResNet()), x, x.shape
    if arch == "vit":
        x = torch.randn(2, 3, 16, 16)
        return ViT().eval(), x, x.shape
    if arch == "lstm":
        ids = torch.tensor([[3, 4, 5, 0, 0], [6, 7, 8, 9, 2]])
        return PackedLSTM().eval(), ids, ids.shape
    if tf is None:
        pytest.skip("needs transformers (pip install 'deepscope[transformers]')")
    tf.utils.logging.set_verbosity_error()
    config = tf.BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1,
                           num_attention_heads=2, intermediate_size=32, num_labels=2,
                           max_position_embeddings=16)
    tok = tf.BertTokenizerFast(vocab={w: i for i, w in enumerate(WORDS)})
    enc = tok(["a great film playing well", "dull"], padding=True, return_tensors="pt")
    return tf.BertForSequenceClassification(config).eval(), enc, enc["input_ids"].shape


def _logits(model, x):
    with torch.no_grad():
        out = model(**x) if isinstance(x, dict) or hasattr(x, "keys") else model(x)
    return out.logits if hasattr(out, "logits") else out


# ----------------------------------------------------------------------------- the tests
@pytest.mark.parametrize("method", explain.list_methods())
@pytest.mark.parametrize("arch", ARCHS)
def test_every_method_gives_finite_values_a_stated_fallback_or_a_typed_refusal(arch, method):
    # Arrange
    model, x, shape = make_case(arch)
    before = _logits(model, x)
    # Act
    if (arch, method) in REFUSED:
        with pytest.raises(InvalidInputError) as info:
            explain.attribute(model, x, method=method)
        # Assert: the refusal says why and what to use instead
        assert f"The method '{method}' cannot explain this model: " in str(info.value)
        assert REFUSED[arch, method] in str(info.value) and "Use one of " in str(info.value)
        return
    attr = explain.attribute(model, x, method=method)
    # Assert
    assert tuple(attr.values.shape) == tuple(shape)
    assert bool(torch.isfinite(attr.values).all()) and bool((attr.values != 0).any())
    used, reason = FALLBACK.get((arch, method), (method, None))
    assert attr.method == used
    if reason is not None:
        assert any(w.startswith(f"{method} -> {used}: ") and reason in w for w in attr.warnings)
    torch.testing.assert_close(_logits(model, x), before)   # the model is left as it was


def test_padding_of_the_packed_lstm_and_of_bert_scores_exactly_zero():
    for arch in ("lstm", "bert"):
        model, x, _ = make_case(arch)
        ids = x["input_ids"] if arch == "bert" else x
        attr = explain.attribute(model, x, method="integrated_gradients")
        assert bool((attr.values[ids == 0] == 0).all()) and int((ids == 0).sum()) > 0


def test_in_place_reused_relus_never_corrupt_deeplift():
    # Arrange: the torchvision block and a twin with one non-inplace ReLU per use
    torch.manual_seed(0)
    shared = _settle(ResNet(inplace=True))
    twin = ResNet(inplace=False)
    twin.load_state_dict(shared.state_dict())
    twin.eval()
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(shared(x.clone()), twin(x.clone()))
    # Act
    fell_back = explain.attribute(shared, x, method="deeplift", target=0)
    exact = explain.attribute(twin, x, method="deeplift", target=0)
    ig = [explain.attribute(m, x, method="integrated_gradients", target=0)
          for m in (shared, twin)]
    # Assert: the twin runs DeepLift and its scores add up to f(x) - f(0); the shared-ReLU
    # model falls back, naming the reused modules, to integrated gradients of the same function
    assert exact.method == "deeplift" and exact.warnings == ()
    with torch.no_grad():
        gap = twin(x)[:, 0] - twin(torch.zeros_like(x))[:, 0]
    torch.testing.assert_close(exact.values.flatten(1).sum(1), gap, atol=1e-4, rtol=1e-4)
    assert fell_back.method == "integrated_gradients"
    assert fell_back.warnings[0] == ("deeplift -> integrated_gradients: modules reused within "
                                     "one forward pass: ['layer1.relu', 'layer2.relu']")
    torch.testing.assert_close(fell_back.values, ig[1].values, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ig[0].values, ig[1].values)


def test_shap_deep_on_the_shared_relu_resnet_falls_back_instead_of_running():
    model, x, _ = make_case("resnet")
    attr = explain.attribute(model, x, method="shap_deep", target=1)
    assert attr.method == "shap_gradient"
    assert attr.warnings[0].startswith("shap_deep -> shap_gradient: modules reused within one "
                                       "forward pass: ['layer1.relu', 'layer2.relu']")


def test_shap_deep_falls_back_when_its_rules_break_on_an_in_place_residual_add():
    # Arrange: one ReLU per use (preflight passes), but torchvision's ``out += identity`` is an
    # in-place write to a tensor shap's DeepExplainer hooks
    torch.manual_seed(0)
    model = _settle(ResNet(inplace=False))
    x = torch.randn(2, 3, 16, 16)
    # Act
    attr = explain.attribute(model, x, method="shap_deep", target=0)
    # Assert: the stated fallback, finite values of the input's shape, never a raw traceback
    assert attr.method == "shap_gradient"
    assert attr.warnings[0].startswith("shap_deep -> shap_gradient: its propagation rules broke "
                                       "while running (")
    assert attr.values.shape == x.shape and bool(torch.isfinite(attr.values).all())


class Video(nn.Module):
    """A 3-D convolution over clips ``[batch, C, T, H, W]``: a rank no modality names."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 5)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean((2, 3, 4)))


@pytest.mark.parametrize("method", ["integrated_gradients", "saliency", "occlusion"])
def test_a_video_clip_is_attributed_as_it_comes(method):
    torch.manual_seed(0)
    model, x = Video().eval(), torch.randn(3, 3, 4, 6, 6)
    a = explain.attribute(model, x, target=1, method=method)
    assert a.values.shape == x.shape and torch.isfinite(a.values).all()
    assert a.values.abs().sum() > 0
    if method == "integrated_gradients":   # complete: the attributions sum to f(x) - f(0)
        with torch.no_grad():
            gap = model(x)[:, 1] - model(torch.zeros_like(x))[:, 1]
        assert torch.allclose(a.values.flatten(1).sum(1), gap, rtol=0.02, atol=1e-4)
