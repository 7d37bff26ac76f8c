"""Pieces of the training loop: device, optimizer, schedule, batching, evaluation, resume state,
early stopping, the monitor and the progress bar."""

from __future__ import annotations

import inspect
import math
import random
from collections.abc import Iterator
from functools import partial
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from explain.card import ModelCard, card_of
from explain.errors import DataMismatchError, InvalidInputError, InvalidTypeError
from zoo.config import TrainConfig
from zoo.data.base import DatasetBundle


def resolve_device(name: str) -> torch.device:
    """``auto``: cuda, then mps, else cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        from explain.errors import InvalidInputError
        raise InvalidInputError(
            f"The 'device' parameter of TrainConfig is {name!r}, but CUDA is not available on this "
            f"machine. Use device='auto' or 'cpu'.")
    return dev


def amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for full precision (mixed precision is CUDA-only)."""
    if device.type != "cuda" or config.amp is False:
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    lr, wd = config.lr, config.weight_decay
    name = config.optimizer
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=wd)
    if name == "sgd+momentum":
        return torch.optim.SGD(params, lr=lr, momentum=config.momentum, weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)
    return torch.optim.RMSprop(params, lr=lr, weight_decay=wd, momentum=0.0)


def _schedule(kind: str, total: int, step: int) -> float:
    # Pure functions of the step, so LambdaLR's state stays JSON (no pickled closures).
    t = min(step, total) / max(total, 1)
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    if kind == "step":
        return 1.0 if t < 0.5 else (0.1 if t < 0.75 else 0.01)
    if kind == "onecycle":  # linear warm-up over 30%, cosine down to 1% of peak
        if t < 0.3:
            return 0.04 + 0.96 * t / 0.3
        return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * (t - 0.3) / 0.7))
    return 1.0


def build_scheduler(opt: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int):
    """A per-step LambdaLR (``none`` gives a constant factor of 1)."""
    total = config.epochs * steps_per_epoch
    return torch.optim.lr_scheduler.LambdaLR(opt, partial(_schedule, config.scheduler, total))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def batches(dataset: Dataset, batch_size: int, device: torch.device, *, seed: int = 0,
            epoch: int = 0, shuffle: bool = True,
            num_workers: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Mini-batches in an order that depends only on (seed, epoch): resume is exact."""
    bs = batch_size
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    tensors = getattr(dataset, "tensors", None)
    if tensors is not None:  # in-memory: index tensors directly, no per-sample collation
        x, y = tensors
        n = len(y)
        order = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
        for i in range(0, n, bs):
            idx = order[i:i + bs]
            yield x[idx].to(device, non_blocking=True), y[idx].to(device, non_blocking=True)
        return
    loader = DataLoader(dataset, batch_size=bs, shuffle=shuffle, generator=gen,
                        num_workers=num_workers, pin_memory=device.type == "cuda")
    for xb, yb in loader:
        yield xb.to(device, non_blocking=True), torch.as_tensor(yb).to(device, non_blocking=True)


@torch.no_grad()
def predict(model: nn.Module, dataset: Dataset, device: torch.device, *, batch_size: int = 512,
            autocast: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits [N, classes] (float32, CPU) and labels [N] for a whole dataset, in eval mode.

    Not :func:`explain._core.tensors.predict`: this one walks a ``Dataset`` of ``(x, y)`` pairs
    (labels too) in :func:`batches` order, under the training autocast, on the live training
    model (eval mode only while it runs). That one takes an input tensor the audit collected and
    turns a model that cannot take it into a :class:`explain.DataMismatchError`.
    """
    was_training = model.training
    model.eval()
    outs, ys = [], []
    try:
        for xb, yb in batches(dataset, batch_size, device, shuffle=False):
            with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
                outs.append(model(xb).float().cpu())
            ys.append(yb.cpu())
    finally:
        model.train(was_training)
    if not outs:
        return torch.empty(0, 0), torch.empty(0, dtype=torch.long)
    return torch.cat(outs), torch.cat(ys)


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor,
                           class_names: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Accuracy, loss and per-class precision / recall / F1 / support."""
    k = len(class_names)
    loss = float(nn.functional.cross_entropy(logits, labels)) if len(labels) else None
    pred = logits.argmax(1)
    conf = torch.zeros(k, k, dtype=torch.long)
    conf.index_put_((labels, pred), torch.ones_like(labels), accumulate=True)
    tp = conf.diag().double()
    per_class = {}
    for i, name in enumerate(class_names):
        p_den, r_den = conf[:, i].sum().item(), conf[i, :].sum().item()
        prec = tp[i].item() / p_den if p_den else 0.0
        rec = tp[i].item() / r_den if r_den else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per_class[str(name)] = {"precision": prec, "recall": rec, "f1": f1, "support": int(r_den)}
    return {"accuracy": float((pred == labels).double().mean()) if len(labels) else None,
            "loss": loss, "per_class": per_class, "confusion": conf.tolist()}


# ----------------------------------------------------------------------------- resume state
def capture_state(opt, sched, epoch: int, early: dict[str, Any],
                  best_state: dict[str, torch.Tensor] | None) -> dict[str, Any]:
    """Everything needed to continue bit-exactly, as tensors + JSON (nothing pickled)."""
    tensors: dict[str, torch.Tensor] = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    np_state = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state())
    tensors["rng.numpy.keys"] = torch.from_numpy(np.asarray(np_state[1], dtype=np.int64))
    opt_sd = opt.state_dict()
    opt_json: dict[str, Any] = {}
    for pid, st in opt_sd["state"].items():
        for key, val in st.items():
            if torch.is_tensor(val):
                tensors[f"opt.{pid}.{key}"] = val
            else:
                opt_json[f"{pid}.{key}"] = val
    if best_state is not None:
        for k, v in best_state.items():
            tensors[f"best.{k}"] = v
    py_state = random.getstate()
    return {"tensors": tensors, "json": {
        "epoch": epoch,
        "optimizer_param_groups": opt_sd["param_groups"],
        "optimizer_scalars": opt_json,
        "scheduler": sched.state_dict() if sched is not None else None,
        "early_stopping": early,
        "rng_python": [py_state[0], list(py_state[1]), py_state[2]],
        "rng_numpy": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "has_best": best_state is not None,
    }}


def restore_state(opt, sched, js: dict[str, Any], tensors: dict[str, torch.Tensor],
                  device: torch.device) -> dict[str, torch.Tensor] | None:
    """Inverse of :func:`capture_state`; returns the early-stopping best weights (if any)."""
    state: dict[int, dict[str, Any]] = {}
    for name, val in tensors.items():
        if name.startswith("opt."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = val.to(device) if key != "step" else val
    for name, val in js["optimizer_scalars"].items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = val
    opt.load_state_dict({"state": state, "param_groups": js["optimizer_param_groups"]})
    if sched is not None and js.get("scheduler"):
        sched.load_state_dict(js["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [tensors[k] for k in sorted(t for t in tensors if t.startswith("rng.cuda."))]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])
    keys = tensors["rng.numpy.keys"].numpy().astype(np.uint32)
    name, pos, has_gauss, cached = js["rng_numpy"]
    np.random.set_state((name, keys, pos, has_gauss, cached))
    ver, internal, gauss = js["rng_python"]
    random.setstate((ver, tuple(internal), gauss))
    if js.get("has_best"):
        return {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
    return None


def build_model(model, dataset: DatasetBundle, mkw: dict[str, Any]):
    """The module, its registered name and kwargs (``None`` for a module without a zoo card)."""
    from zoo.registry import create_model
    if isinstance(model, str):
        kw = {**dataset.model_kwargs(), **mkw}
        m = create_model(model, **kw)
        return m, model, dict(m.card.kwargs)
    if isinstance(model, nn.Module):
        card = card_of(model)
        return model, (card.name if card else None), (dict(card.kwargs) if card else None)
    raise InvalidTypeError(
        f"The 'model' parameter of zoo.train must be a model name (zoo.list_models()) or an "
        f"nn.Module. Got {type(model).__name__} instead.")


def named_card(net: nn.Module, data: DatasetBundle) -> ModelCard | None:
    """The model's card, renamed to the data's class names (set back on the model)."""
    card = card_of(net)
    if card is not None and tuple(card.class_names) != tuple(data.class_names):
        card = card.with_classes(data.class_names)
        net.card = card  # type: ignore[assignment]  # any module may carry a card
    return card


def check_data(model: nn.Module, dataset: DatasetBundle) -> None:
    """Every split non-empty, the class count and the label range matching the model."""
    for split in ("train", "val", "test"):
        if len(getattr(dataset, split)) == 0:
            raise InvalidInputError(
                f"The {split!r} split of dataset {dataset.name!r} is empty; every split needs at "
                f"least one sample. Use a larger dataset or smaller val/test fractions.")
    card = card_of(model)
    if card is not None and card.num_classes != dataset.num_classes:
        raise DataMismatchError(
            f"The model has {card.num_classes} output classes but dataset {dataset.name!r} has "
            f"{dataset.num_classes}. Create the model with num_classes={dataset.num_classes}.")
    tensors = getattr(dataset.train, "tensors", None)
    if tensors is not None:
        y = tensors[1]
        bad = (y < 0) | (y >= dataset.num_classes)
        if bool(bad.any()):
            idx = bad.nonzero().flatten()[:5].tolist()
            raise DataMismatchError(
                f"Labels of dataset {dataset.name!r} must be in [0, {dataset.num_classes - 1}]; "
                f"got {y[idx].tolist()} at train positions {idx}. Remap the labels to 0..K-1.")


# ----------------------------------------------------------------------------- per-epoch pieces
def l1_penalty(model: nn.Module) -> torch.Tensor:
    """The L1 norm of the trainable weights (not biases)."""
    return cast(torch.Tensor, sum(p.abs().sum() for n, p in model.named_parameters()
                                  if p.requires_grad and p.dim() > 1))


def early_stopping(cfg: TrainConfig, early: dict[str, Any], epoch: int, val_loss: float) -> bool:
    """Update ``early`` with ``val_loss`` of ``epoch``; True once patience has run out."""
    best = early["best_val_loss"]
    if best is None or val_loss < best:
        early.update(best_val_loss=val_loss, best_epoch=epoch, bad_epochs=0)
        return False
    early["bad_epochs"] += 1
    return cfg.early_stopping is not None and early["bad_epochs"] >= cfg.early_stopping


def make_monitor(net: nn.Module, cfg: TrainConfig, history, scaler=None):
    """A :class:`explain.TrainingMonitor` continuing ``history`` (``None`` if monitoring is off)."""
    if not cfg.monitor:
        return None
    try:
        from explain.monitor import TrainingMonitor
    except ImportError:  # pragma: no cover
        return None
    kwargs: dict[str, Any] = {"every": cfg.monitor_every}
    if scaler is not None:  # AMP: overflows are the scaler's, the BPTT curve is unscaled
        kwargs["scaler"] = scaler
    if history is not None and "history" in inspect.signature(TrainingMonitor).parameters:
        kwargs["history"] = history
    return TrainingMonitor(net, **kwargs)


def progress_bar(show: bool, start: int, total: int, model: Any, data: str):
    """A tqdm bar over epochs (``None`` when ``show`` is false)."""
    if not show:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=start, desc=f"train {model} on {data}", unit="epoch",
                leave=True, dynamic_ncols=True)
