"""The batch plan against every fixed pass size, on architectures that are not in the zoo.

For each model built here (none is in the zoo; ``mobile``, ``convnext``, ``textcnn`` and
``gruattn`` were held out until stop 33, when their occlusion curves at two threads helped set
the forward rule of :mod:`explain.attribution.batching`; ``vit``, ``vgg`` and ``tcn`` were built
to check it), one line per thread count: the rows the plan chose (and the rule that chose
them), its time, and the time at each fixed ``batch_size`` of 32..2,048 rows, all interleaved
in every repeat (median), with the plan's time over the best fixed one
(median of the per-repeat ratios [min-max]). 1.00 means the plan found the best size; above 1
is what the plan leaves on the table.

    python benchmarks/plan_sweep.py                                  # all models, 1 and 2 threads
    python benchmarks/plan_sweep.py --models textcnn --threads 2 --repeats 5
    python benchmarks/plan_sweep.py --method occlusion --sizes 32,64,128,256,512,1024

Models: ``mobile`` (depthwise-separable convolutions with BatchNorm and ReLU6, 3x32x32),
``convnext`` (a 4x4 patch stem, 7x7 depthwise convolutions, LayerNorm, a 4x GELU MLP per
pixel, 3x32x32), ``textcnn`` (token ids: an embedding, Conv1d of widths 3, 4 and 5, max over
time; 64 tokens), ``gruattn`` (a GRU over 120 steps of 8 features with attention pooling),
``vit`` (4x4 patches of 3x32x32, four pre-norm encoder layers of width 96), ``vgg`` (plain
3x3 convolutions and max pooling on 3x64x64, no BatchNorm) and ``tcn`` (six dilated causal
Conv1d blocks over 400 steps of 4 features).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
import torch.nn.functional as F
from attribution import _Card  # noqa: E402  the card of models built in benchmarks/attribution.py
from torch import nn

from explain.attribution import get_explainer
from explain.attribution.batching import clear_cache


class _Separable(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False)
        self.b1 = nn.BatchNorm2d(cin)
        self.pw = nn.Conv2d(cin, cout, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu6(self.b2(self.pw(F.relu6(self.b1(self.dw(x))))))


class _Mobile(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32),
                                  nn.ReLU6())
        cfg = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1)]
        self.blocks = nn.Sequential(*[_Separable(a, b, s) for a, b, s in cfg])
        self.fc = nn.Linear(256, 10)

    def forward(self, x):
        return self.fc(self.blocks(self.stem(x)).mean((2, 3)))


class _NeXtBlock(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(d, d, 7, padding=3, groups=d)
        self.ln = nn.LayerNorm(d)
        self.f1, self.f2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        y = self.f2(F.gelu(self.f1(self.ln(self.dw(x).permute(0, 2, 3, 1)))))
        return x + y.permute(0, 3, 1, 2)


class _ConvNeXt(nn.Module):
    def __init__(self, d: int = 64) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, d, 4, 4)
        self.blocks = nn.Sequential(*[_NeXtBlock(d) for _ in range(3)])
        self.down = nn.Conv2d(d, 2 * d, 2, 2)
        self.late = nn.Sequential(*[_NeXtBlock(2 * d) for _ in range(2)])
        self.fc = nn.Linear(2 * d, 10)

    def forward(self, x):
        return self.fc(self.late(self.down(self.blocks(self.stem(x)))).mean((2, 3)))


class _TextCNN(nn.Module):
    def __init__(self, vocab: int = 5000, d: int = 64) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.convs = nn.ModuleList(nn.Conv1d(d, 100, k) for k in (3, 4, 5))
        self.fc = nn.Linear(300, 2)

    def forward(self, ids):
        e = self.emb(ids).transpose(1, 2)
        return self.fc(torch.cat([F.relu(c(e)).amax(-1) for c in self.convs], 1))


class _GRUAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(8, 64, batch_first=True)
        self.att, self.fc = nn.Linear(64, 1), nn.Linear(64, 4)

    def forward(self, x):
        h, _ = self.gru(x)
        return self.fc((torch.softmax(self.att(h), 1) * h).sum(1))


class _ViT(nn.Module):
    """A small vision transformer: 4x4 patches of 3x32x32 (64 tokens of 96), 4 pre-norm layers."""

    def __init__(self, d: int = 96) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, d, 4, 4)
        self.pos = nn.Parameter(torch.zeros(1, 64, d))
        layer = nn.TransformerEncoderLayer(d, 4, 2 * d, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, 4, enable_nested_tensor=False)
        self.fc = nn.Linear(d, 10)

    def forward(self, x):
        tokens = self.patch(x).flatten(2).transpose(1, 2) + self.pos
        return self.fc(self.encoder(tokens).mean(1))


def _vgg_stage(cin: int, cout: int, convs: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1), nn.ReLU()]
    return [*layers, nn.MaxPool2d(2)]


class _VGG(nn.Module):
    """A plain VGG-style CNN on 3x64x64 (no BatchNorm): its first stage writes 512 KiB a row."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(*_vgg_stage(3, 32, 2), *_vgg_stage(32, 64, 2),
                                      *_vgg_stage(64, 128, 1))
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


class _TCN(nn.Module):
    """A temporal convolutional net: 6 dilated causal Conv1d blocks (64 channels, dilations
    1..32, residual) over 400 steps of 4 features."""

    def __init__(self, d: int = 64) -> None:
        super().__init__()
        self.inp = nn.Conv1d(4, d, 1)
        self.convs = nn.ModuleList(nn.Conv1d(d, d, 3, dilation=2**i) for i in range(6))
        self.fc = nn.Linear(d, 3)

    def forward(self, x):
        h = self.inp(x.transpose(1, 2))
        for i, conv in enumerate(self.convs):
            h = h + F.relu(conv(F.pad(h, (2 * 2**i, 0))))
        return self.fc(h.mean(-1))


MODELS = {"mobile": (_Mobile, "image", lambda g: torch.randn(64, 3, 32, 32, generator=g)),
          "convnext": (_ConvNeXt, "image", lambda g: torch.randn(64, 3, 32, 32, generator=g)),
          "textcnn": (_TextCNN, "text", lambda g: torch.randint(1, 5000, (64, 64), generator=g)),
          "gruattn": (_GRUAttention, "sequence",
                      lambda g: torch.randn(64, 120, 8, generator=g)),
          "vit": (_ViT, "image", lambda g: torch.randn(64, 3, 32, 32, generator=g)),
          "vgg": (_VGG, "image", lambda g: torch.randn(64, 3, 64, 64, generator=g)),
          "tcn": (_TCN, "sequence", lambda g: torch.randn(64, 400, 4, generator=g))}


def sweep(name: str, method: str, sizes: list[int], repeats: int) -> str:
    """One line: the plan against each fixed size, interleaved in every repeat."""
    build, modality, data = MODELS[name]
    torch.manual_seed(0)
    model = build().eval()
    model.card = _Card(modality)
    x = data(torch.Generator().manual_seed(0))
    with torch.no_grad():
        target = model(x).argmax(1)
    explainer = get_explainer(method)(model)
    clear_cache()
    plan = explainer.explain(x, target).plan
    times: dict[int | None, list[float]] = {s: [] for s in (None, *sizes)}
    order = list(times.items())
    for rep in range(repeats):   # each repeat in the other order: drift hits every size alike
        for size, got in (order if rep % 2 == 0 else order[::-1]):
            t = time.perf_counter()
            explainer.explain(x, target, batch_size=size)
            got.append(time.perf_counter() - t)
    med = {s: statistics.median(v) for s, v in times.items()}
    best = min(sizes, key=lambda s: med[s])
    ratios = [p / b for p, b in zip(times[None], times[best])]
    fixed = " ".join(f"{s}:{med[s]:.3f}" for s in sizes)
    return (f"{name:9}{plan.rows:>6} {plan.reason:9}{med[None]:8.3f}{best:>6}{med[best]:8.3f}"
            f"  {statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}]   {fixed}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--method", default="integrated_gradients")
    p.add_argument("--sizes", default="32,64,128,256,512,1024,2048")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", default="1,2", help="comma list of torch thread counts")
    args = p.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    sizes = [int(s) for s in args.sizes.split(",")]
    for threads in map(int, args.threads.split(",")):
        torch.set_num_threads(threads)
        print(f"\n{args.method}, 64 samples, threads={threads}, repeats={args.repeats} "
              "(seconds, medians)")
        print(f"{'model':9}{'plan':>6} {'rule':9}{'s':>8}{'best':>6}{'s':>8}  plan/best"
              "            each fixed size: s")
        for name in args.models.split(","):
            print(sweep(name, args.method, sizes, args.repeats), flush=True)


if __name__ == "__main__":
    main()
