"""The wild suite: training runs written as users write them, outside ``zoo.train``.

Each case builds its model, optimizer and loop by hand (the loop of a tutorial: zero_grad,
forward, backward, optional clipping, step, a scheduler, an evaluation per epoch) and wraps it
in ``explain.TrainingMonitor``. Half are healthy (some converge to a loss of ~1e-3), the rest
carry one planted pathology each; ``Case.expected`` names the check that should find it.
Data ships with the packages (sklearn digits, the Japanese vowels via ``zoo.load_dataset``) or
is generated. ``scale`` shortens every run (epochs) for the fast tests.

Used by ``benchmarks/diagnosis.py --suite wild`` and by ``tests/explain/test_checks_wild.py``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from explain.monitor import History, TrainingMonitor

__all__ = ["Case", "CASES", "Data", "run_case"]


@dataclass
class Data:
    x: torch.Tensor
    y: torch.Tensor
    xv: torch.Tensor
    yv: torch.Tensor
    classes: int


@dataclass(frozen=True)
class Case:
    """One run: ``build(scale) -> (model, data, settings)``; ``expected`` = planted check ids."""

    name: str
    expected: tuple[str, ...]
    build: Callable[[], tuple[nn.Module, Data, dict[str, Any]]]
    note: str = ""
    fast: bool = True  # part of the reduced default-test run


@dataclass
class Result:
    name: str
    expected: tuple[str, ...]
    history: History
    model: nn.Module
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------- data
_CACHE: dict[str, Data] = {}


def digits(n_train: int | None = None, flat: bool = True) -> Data:
    key = f"digits{n_train}{flat}"
    if key not in _CACHE:
        import zoo
        b = zoo.load_dataset("digits")
        (x, y), (xv, yv) = b.train.tensors, b.val.tensors
        if n_train:
            x, y = x[:n_train], y[:n_train]
        if flat:
            x, xv = x.flatten(1), xv.flatten(1)
        _CACHE[key] = Data(x, y, xv, yv, 10)
    return _CACHE[key]


def vowels() -> Data:
    if "vowels" not in _CACHE:
        import zoo
        b = zoo.load_dataset("japanese-vowels")
        (x, y), (xv, yv) = b.train.tensors, b.val.tensors
        _CACHE["vowels"] = Data(x, y, xv, yv, 9)
    return _CACHE["vowels"]


def noisy(d: Data, fraction: float, seed: int = 0) -> Data:
    """``d`` with ``fraction`` of its training labels replaced by random classes."""
    g = torch.Generator().manual_seed(seed)
    y = d.y.clone()
    flip = torch.rand(len(y), generator=g) < fraction
    y[flip] = torch.randint(0, d.classes, (int(flip.sum()),), generator=g)
    return Data(d.x, y, d.xv, d.yv, d.classes)


def blobs(n: int, noise: float, seed: int, classes: int = 3, dim: int = 10) -> Data:
    """Gaussian class clusters; ``noise`` their spread around unit-distance centres."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=g) * 1.5

    def draw(m: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, classes, (m,), generator=g)
        return centres[y] + noise * torch.randn(m, dim, generator=g), y
    (x, y), (xv, yv) = draw(n), draw(400)
    return Data(x, y, xv, yv, classes)


def sequences(n: int, seed: int, length: int = 20) -> Data:
    """Class = sign pattern of the first and last time step's mean: an easy sequence task."""
    g = torch.Generator().manual_seed(seed)

    def draw(m: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(m, length, 4, generator=g) * 0.3
        y = torch.randint(0, 2, (m,), generator=g)
        x[:, :, 0] += (2 * y - 1)[:, None].float()
        return x, y
    (x, y), (xv, yv) = draw(n), draw(200)
    return Data(x, y, xv, yv, 2)


# ---------------------------------------------------------------------- models
def mlp(inp: int, hidden: list[int], out: int, act: type[nn.Module] = nn.ReLU,
        dropout: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(inp, h), act()] + ([nn.Dropout(dropout)] if dropout else [])
        inp = h
    return nn.Sequential(*layers, nn.Linear(inp, out))


class SmallCNN(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(32 * 4 * 4, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [batch, 1, 8, 8]
        return self.head(self.features(x).flatten(1))


class Recurrent(nn.Module):
    def __init__(self, kind: str, features: int, hidden: int, classes: int, **kw: Any) -> None:
        super().__init__()
        self.rnn = getattr(nn, kind)(features, hidden, batch_first=True, **kw)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [batch, time, features]
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


class Encoder(nn.Module):
    def __init__(self, features: int, classes: int, d: int = 32) -> None:
        super().__init__()
        self.proj = nn.Linear(features, d)
        layer = nn.TransformerEncoderLayer(d, 4, 64, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(d, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [batch, time, features]
        return self.head(self.encoder(self.proj(x)).mean(1))


# ---------------------------------------------------------------------- the user's loop
def warmup_cosine(opt: torch.optim.Optimizer, warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        out = model(x)
        loss, acc = F.cross_entropy(out, y).item(), (out.argmax(1) == y).float().mean().item()
    model.train()
    return loss, acc


def run_case(case: Case, scale: float = 1.0) -> Result:
    """Train ``case`` as a user would, under a TrainingMonitor; ``scale`` shortens the run."""
    import time
    torch.manual_seed(0)
    model, data, s = case.build()
    epochs = max(3, round(s.get("epochs", 10) * scale))
    opt = s["opt"](model.parameters())
    batch = s.get("batch", 64)
    steps_per_epoch = math.ceil(len(data.x) / batch / s.get("accum", 1))
    sched = s["sched"](opt, epochs * steps_per_epoch) if "sched" in s else None
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(0)
    with TrainingMonitor(model) as mon:
        step = 0
        for _ in range(epochs):
            order = torch.randperm(len(data.x), generator=g)
            total, correct, seen = 0.0, 0, 0
            for i, start in enumerate(range(0, len(data.x), batch)):
                idx = order[start:start + batch]
                xb, yb = data.x[idx], data.y[idx]
                ctx = (torch.autocast("cpu", dtype=torch.bfloat16) if s.get("bf16")
                       else contextlib.nullcontext())
                with ctx:
                    out = model(xb)
                    loss = F.cross_entropy(out.float(), yb)
                (loss / s.get("accum", 1)).backward()
                total += loss.item() * len(idx)
                correct += int((out.argmax(1) == yb).sum())
                seen += len(idx)
                if (i + 1) % s.get("accum", 1):
                    continue
                if s.get("clip"):
                    torch.nn.utils.clip_grad_norm_(model.parameters(), s["clip"])
                if "at_step" in s:
                    s["at_step"](step, opt)
                opt.step()
                opt.zero_grad()
                if sched is not None:
                    sched.step()
                mon.step(loss=loss.detach()) if s.get("loss", True) else mon.step()
                step += 1
            val_loss, val_acc = evaluate(model, data.xv, data.yv)
            mon.log_epoch(train_loss=total / seen, train_acc=correct / seen, val_loss=val_loss,
                          val_acc=val_acc, lr=opt.param_groups[0]["lr"])
    mon.history.meta["num_classes"] = data.classes
    return Result(case.name, case.expected, mon.history, model, time.perf_counter() - t0)


# ---------------------------------------------------------------------- the cases
def _sgd(lr: float, momentum: float = 0.0, **kw: Any):
    return lambda p: torch.optim.SGD(p, lr=lr, momentum=momentum, **kw)


def _adam(lr: float, cls: Any = torch.optim.Adam, **kw: Any):
    return lambda p: cls(p, lr=lr, **kw)


def _init(model: nn.Module, fn: Callable[[nn.Module], None]) -> nn.Module:
    with torch.no_grad():
        fn(model)
    return model


def _huge_step(at: int, lr: float):
    """One optimizer step at learning rate ``lr`` (a spike in the schedule, a unit bug)."""
    def hook(step: int, opt: torch.optim.Optimizer) -> None:
        for group in opt.param_groups:
            group.setdefault("_lr", group["lr"])
            group["lr"] = lr if step == at else group["_lr"]
    return hook


def _cases() -> list[Case]:
    def c(name, expected, build, note="", fast=True):
        return Case(name, tuple(expected), build, note, fast)

    def bias_dead(m: nn.Module) -> None:
        m[0].bias.fill_(-8.0)

    def saturate(m: nn.Module) -> None:
        for layer in m:
            if isinstance(layer, nn.Linear):
                layer.weight.mul_(8.0)

    def relu_rnn_big(m: nn.Module) -> None:
        m.rnn.weight_hh_l0.copy_(torch.eye(64) * 1.6 + 0.05 * torch.randn(64, 64))

    return [
        # ---------------------------------------------------------------- healthy
        c("mlp-sgd-digits", [], lambda: (mlp(64, [128], 10), digits(),
          {"opt": _sgd(0.1), "epochs": 15})),
        c("mlp-momentum-cosine", [], lambda: (mlp(64, [128, 64], 10), digits(),
          {"opt": _sgd(0.05, 0.9), "epochs": 15,
           "sched": lambda o, n: torch.optim.lr_scheduler.CosineAnnealingLR(o, n)})),
        c("mlp-adam-cosine", [], lambda: (mlp(64, [256], 10), digits(),
          {"opt": _adam(3e-3), "epochs": 12,
           "sched": lambda o, n: torch.optim.lr_scheduler.CosineAnnealingLR(o, n)})),
        c("mlp-rmsprop-noloss", [], lambda: (mlp(64, [128], 10), digits(),
          {"opt": _adam(1e-3, torch.optim.RMSprop), "epochs": 15, "loss": False})),
        c("mlp-bf16-autocast", [], lambda: (mlp(64, [128, 64], 10), digits(),
          {"opt": _adam(1e-3), "epochs": 15, "bf16": True})),
        c("blobs-adam-fast", [], lambda: (mlp(10, [64, 64], 3), blobs(600, 0.3, 1),
          {"opt": _adam(1e-2), "epochs": 40, "batch": 32}), "loss to ~1e-4"),
        c("cnn-bn-adamw-warmup", [], lambda: (SmallCNN(), digits(flat=False),
          {"opt": _adam(2e-3, torch.optim.AdamW, weight_decay=0.01), "epochs": 8,
           "sched": lambda o, n: warmup_cosine(o, n // 10, n)})),
        c("cnn-bn-sgd-accum", [], lambda: (SmallCNN(), digits(flat=False),
          {"opt": _sgd(0.05, 0.9), "epochs": 8, "batch": 16, "accum": 4, "loss": False})),
        c("gru-adam-clip", [], lambda: (Recurrent("GRU", 12, 64, 9), vowels(),
          {"opt": _adam(3e-3), "epochs": 25, "batch": 32, "clip": 1.0})),
        c("lstm-adam-accum", [], lambda: (Recurrent("LSTM", 12, 64, 9), vowels(),
          {"opt": _adam(3e-3), "epochs": 25, "batch": 16, "accum": 2, "clip": 5.0})),
        # healthy by intent; its ground truth is disputable: pre-clip norms spike to ~340
        # (~77x the running median, at step ~191 of 225) and it learns little (accuracy ~0.2);
        # the loop clips them, so exploding-gradients reports them as contained (INFO)
        c("rnn-rmsprop-clip", [], lambda: (Recurrent("RNN", 12, 64, 9), vowels(),
          {"opt": _adam(1e-3, torch.optim.RMSprop), "epochs": 25, "batch": 32, "clip": 1.0})),
        c("mlp-adamw-dropout", [], lambda: (mlp(64, [256, 128], 10, dropout=0.2), digits(),
          {"opt": _adam(1e-3, torch.optim.AdamW), "epochs": 15})),
        c("transformer-adamw-warmup", [], lambda: (Encoder(12, 9), vowels(),
          {"opt": _adam(1e-3, torch.optim.AdamW), "epochs": 25, "batch": 32,
           "sched": lambda o, n: warmup_cosine(o, n // 5, n)})),
        # was 'overfit-mlp-overtrained': its validation loss only scatters (0.05-0.09, one
        # noisy minimum 0.0496) around a flat level while the training loss still falls ~15%
        # per 5 epochs (Prechelt's PQ <= 0.2): no rise that Prechelt would stop for
        c("mlp-adam-long", [], lambda: (mlp(64, [256], 10), digits(),
          {"opt": _adam(3e-3), "epochs": 40}), "train loss to ~1e-2, noisy val loss",
          fast=False),
        c("gru-seq-to-1e-3", [], lambda: (Recurrent("GRU", 4, 32, 2), sequences(512, 2),
          {"opt": _adam(1e-2), "epochs": 30, "batch": 32}), "loss to ~1e-3"),
        # ---------------------------------------------------------------- pathologies

        c("overfit-mlp-noisy-labels", ["overfitting"], lambda: (
            mlp(64, [512, 512], 10), noisy(digits(100), 0.3),
            {"opt": _adam(1e-3), "epochs": 100, "batch": 20}),
          "100 samples, 30% of labels shuffled: memorised, acc gap > 0.1"),
        c("overfit-blobs-no-gap", ["overfitting"], lambda: (
            mlp(10, [512, 512], 3), blobs(300, 1.0, 3),
            {"opt": _adam(1e-3), "epochs": 80, "batch": 20}),
          "300 samples of overlapping clusters: val loss 2-3x its epoch-2 minimum while the "
          "training loss flattens, acc gap < 0.1", fast=False),
        c("overfit-blobs-small-gap", ["overfitting"], lambda: (
            mlp(10, [512, 512], 3), blobs(60, 1.2, 3),
            {"opt": _adam(1e-3), "epochs": 150, "batch": 20}), "60 samples of overlapping clusters: val loss rises"),
        c("diverge-sgd-lr", ["unstable-training"], lambda: (mlp(64, [128, 64], 10), digits(),
          {"opt": _sgd(3.0, 0.9), "epochs": 10}), "lr 3 with momentum"),
        c("diverge-adam-lr", ["unstable-training"], lambda: (SmallCNN(), digits(flat=False),
          {"opt": _adam(0.3), "epochs": 8}), "Adam at lr 0.3"),
        c("exploding-relu-rnn", ["exploding-gradients"], lambda: (
            _init(Recurrent("RNN", 12, 64, 9, nonlinearity="relu"), relu_rnn_big), vowels(),
            {"opt": _sgd(0.01), "epochs": 20, "batch": 32}), "recurrent weight 1.6 I, no clip"),
        c("vanishing-deep-sigmoid", ["vanishing-gradients"], lambda: (
            mlp(64, [64] * 10, 10, nn.Sigmoid), digits(), {"opt": _sgd(0.05), "epochs": 8})),
        c("vanishing-deep-tanh", ["vanishing-gradients"], lambda: (
            _init(mlp(64, [64] * 12, 10, nn.Tanh),
                  lambda m: [layer.weight.mul_(0.3) for layer in m
                             if isinstance(layer, nn.Linear)]),
            digits(), {"opt": _sgd(0.05), "epochs": 8}), "tanh, weights 0.3x default"),
        c("dead-relu-bias", ["dead-units"], lambda: (
            _init(mlp(64, [128, 64], 10), bias_dead), digits(),
            {"opt": _sgd(0.05), "epochs": 8}), "first bias -8"),
        c("dead-relu-huge-step", ["dead-units"], lambda: (mlp(64, [128, 64], 10), digits(),
          {"opt": _sgd(0.05), "epochs": 10, "at_step": _huge_step(30, 200.0)}),
          "one step at lr 200"),
        c("saturated-tanh", ["saturation"], lambda: (
            _init(mlp(64, [128, 64], 10, nn.Tanh), saturate), digits(),
            {"opt": _sgd(0.01), "epochs": 8}), "weights 8x default"),
        # lr 1e-3: memorises (train loss 2.2 -> 0.11, accuracy 0.95 vs 0.76) identically on 1
        # and 2 threads; at 3e-3 the LSTM's training was noisy and on 2 threads it never fit
        # its 40 sequences (train accuracy 0.55): no overfitting was planted
        c("overfit-lstm-few", ["overfitting"], lambda: (
            Recurrent("LSTM", 12, 128, 9), _few_vowels(40), {"opt": _adam(1e-3), "epochs": 80, "batch": 20}),
          "40 sequences, memorised", fast=False),
    ]


def _few_vowels(n: int) -> Data:
    d = vowels()
    return Data(d.x[:n], d.y[:n], d.xv, d.yv, d.classes)


CASES: list[Case] = _cases()
