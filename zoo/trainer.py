"""``zoo.train``: train a zoo model (or a preset) on a dataset, recording its health."""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from explain.card import card_of
from explain.errors import (
    DataMismatchError,
    InvalidInputError,
    InvalidTypeError,
    TrainingDivergedError,
)
from zoo import _loop
from zoo.checkpoint import read_resume_state, save_run
from zoo.config import TrainConfig
from zoo.data.base import DatasetBundle
from zoo.run import Run

__all__ = ["train"]

Callback = Callable[[int, int, dict[str, Any]], None]


def _resolve(model, dataset, preset, model_kwargs, dataset_options, config):
    """Fill model / dataset / config from a preset, then explicit arguments override it."""
    from zoo.presets import get_preset
    from zoo.registry import load_dataset

    cfg: dict[str, Any] = {}
    mkw = dict(model_kwargs or {})
    dopts = dict(dataset_options or {})
    if preset is not None:
        p = get_preset(preset)
        model = p.model if model is None else model
        dataset = p.dataset if dataset is None else dataset
        mkw = {**p.model_kwargs, **mkw}
        dopts = {**p.dataset_options, **dopts}
        cfg.update(p.config)
    cfg.update(config)
    if model is None or dataset is None:
        raise InvalidInputError(
            "zoo.train needs a model and a dataset: pass preset='cnn-mnist' (see "
            "zoo.list_presets()), or model='cnn' and dataset='mnist-5k'.")
    dataset_name = None
    if isinstance(dataset, str):
        dataset_name = dataset
        dataset = load_dataset(dataset, **dopts)
    elif not isinstance(dataset, DatasetBundle):
        raise InvalidTypeError(
            f"The 'dataset' parameter of zoo.train must be a dataset name (zoo.list_datasets()) or "
            f"a zoo.DatasetBundle (see zoo.from_arrays). Got {type(dataset).__name__} instead.")
    return model, dataset, dataset_name, mkw, dopts, TrainConfig().replace(**cfg)


def _build_model(model, dataset: DatasetBundle, mkw: dict[str, Any]):
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


def _check_data(model: nn.Module, dataset: DatasetBundle) -> None:
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


def _l1(model: nn.Module) -> torch.Tensor:
    return sum(p.abs().sum() for n, p in model.named_parameters()
               if p.requires_grad and p.dim() > 1)


def _save(run: Run, out: Path | None, resume: dict[str, Any] | None) -> None:
    if out is not None:
        save_run(run, out, resume=resume)


def train(model: str | nn.Module | None = None, dataset: str | DatasetBundle | None = None, *,
          preset: str | None = None, out: str | os.PathLike | None = None, resume: bool = False,
          model_kwargs: dict[str, Any] | None = None,
          dataset_options: dict[str, Any] | None = None, progress: bool = True,
          callback: Callback | None = None, stop_after: int | None = None,
          **config: Any) -> Run:
    """Train a model and return its :class:`zoo.Run` (also written to ``out`` if given).

    Parameters
    ----------
    model : a registered model name, an ``nn.Module``, or ``None`` to take the preset's.
    dataset : a registered dataset name, a :class:`zoo.DatasetBundle`, or ``None`` (preset's).
    preset : a name from :func:`zoo.list_presets`; explicit arguments override it.
    out : run folder, written atomically after every epoch (with resume state).
    resume : continue the run in ``out`` from its last completed epoch (bit-exact on CPU).
    model_kwargs, dataset_options : extra arguments for the model factory / dataset loader.
    progress : show a progress bar (tqdm) per epoch.
    callback : ``callback(epoch, epochs, metrics)`` after every epoch (e.g. a dashboard bar).
    stop_after : train at most this many epochs in this call (resume later with ``resume=True``).
    **config : :class:`zoo.TrainConfig` fields, e.g. ``epochs=5, lr=1e-3, device="cpu"``.

    Raises
    ------
    TrainingDivergedError
        The loss became non-finite; the last good epoch is kept in ``out``.
    """
    model, data, dataset_name, mkw, dopts, cfg = _resolve(
        model, dataset, preset, model_kwargs, dataset_options, config)
    out_path = Path(out) if out is not None else None
    resume_json = resume_tensors = None
    if resume:
        if out_path is None:
            raise InvalidInputError("resume=True needs out= (the run folder to continue).")
        resume_json, resume_tensors = read_resume_state(out_path)
    device = _loop.resolve_device(cfg.device)
    _loop.seed_everything(cfg.seed)
    net, model_name, model_kw = _build_model(model, data, mkw)
    if out_path is not None and model_name is None:
        raise InvalidInputError(
            "out= needs a zoo model (a registered name, or a module with a zoo card): a run folder "
            "rebuilds the architecture by name. For your own nn.Module, call train(..., out=None).")
    _check_data(net, data)
    net.to(device)
    card = card_of(net)
    if card is not None and tuple(card.class_names) != tuple(data.class_names):
        card = card.with_classes(data.class_names)
        net.card = card
    n_train = len(data.train)
    steps_per_epoch = -(-n_train // cfg.batch_size)
    opt = _loop.build_optimizer(net, cfg)
    sched = _loop.build_scheduler(opt, cfg, steps_per_epoch)
    autocast = _loop.amp_dtype(cfg, device)
    scaler = torch.amp.GradScaler("cuda") if autocast == torch.float16 else None
    lossf = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)

    start_epoch, best_state, history = 0, None, None
    early = {"best_val_loss": None, "best_epoch": None, "bad_epochs": 0}
    prev = None
    if resume_json is not None:
        from zoo.checkpoint import load_run
        prev = load_run(out_path, device=device)
        net.load_state_dict(prev.model.state_dict())
        best_state = _loop.restore_state(opt, sched, resume_json, resume_tensors, device)
        start_epoch, early = int(resume_json["epoch"]), dict(resume_json["early_stopping"])
        history = prev.history

    run = Run(model=net, card=card, config=cfg, history=history, metrics={},
              model_name=model_name or type(net).__name__, model_kwargs=model_kw or {},
              dataset_name=dataset_name, dataset_options=dopts if dataset_name else {},
              preset=preset, vocab=data.vocab, epoch=start_epoch)
    monitor = _make_monitor(net, cfg, history, scaler)
    last_epoch = cfg.epochs if stop_after is None else min(cfg.epochs, start_epoch + stop_after)
    bar = _progress(progress, start_epoch, cfg.epochs, model_name, data.name)
    t_all = time.perf_counter()
    stopped_early = False
    with monitor if monitor is not None else contextlib.nullcontext():
        for epoch in range(start_epoch, last_epoch):
            good_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            t0 = time.perf_counter()
            net.train()
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            seen = 0
            for xb, yb in _loop.batches(data.train, cfg.batch_size, device, seed=cfg.seed,
                                        epoch=epoch, num_workers=cfg.num_workers):
                opt.zero_grad(set_to_none=True)
                with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
                    logits = net(xb)
                    loss = lossf(logits.float(), yb)
                    if cfg.l1:
                        loss = loss + cfg.l1 * _l1(net)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.unscale_(opt)
                else:
                    loss.backward()
                if cfg.grad_clip is not None:
                    nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
                if scaler is not None:
                    scaler.step(opt)
                    scaler.update()
                else:
                    opt.step()
                sched.step()
                if monitor is not None:  # it forks the RNG itself: training stays bit-exact
                    monitor.step(loss=loss.detach(), target=yb)
                loss_sum += loss.detach() * len(yb)
                correct += (logits.detach().argmax(1) == yb).sum()
                seen += len(yb)
            train_loss = float(loss_sum) / max(seen, 1)
            if not math.isfinite(train_loss):
                net.load_state_dict(good_state)
                _finish(run, net, data, device, autocast, epoch, time.perf_counter() - t_all)
                run.history = monitor.history if monitor is not None else history
                _save(run, out_path, None)
                raise TrainingDivergedError(
                    f"The training loss became non-finite in epoch {epoch + 1} (lr={cfg.lr}, "
                    f"optimizer={cfg.optimizer}); training stopped and the weights of epoch {epoch} "
                    f"were kept{f' in {out_path}' if out_path else ''}. Lower the learning rate or "
                    f"set grad_clip (e.g. grad_clip=1.0).")
            logits_v, y_v = _loop.predict(net, data.val, device, autocast=autocast)
            val_loss = float(nn.functional.cross_entropy(logits_v, y_v))
            val_acc = float((logits_v.argmax(1) == y_v).double().mean())
            metrics = {"epoch": epoch + 1, "train_loss": train_loss,
                       "train_acc": float(correct) / max(seen, 1), "val_loss": val_loss,
                       "val_acc": val_acc, "lr": opt.param_groups[0]["lr"],
                       "seconds": time.perf_counter() - t0}
            if monitor is not None:
                monitor.log_epoch(**metrics)
            stop = _early_stopping(cfg, early, epoch + 1, val_loss)
            if early["best_epoch"] == epoch + 1 and cfg.early_stopping is not None:
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            run.epoch = epoch + 1
            run.history = monitor.history if monitor is not None else history
            if out_path is not None:
                run.metrics = {"val_accuracy": val_acc, "val_loss": val_loss, "complete": False}
                _save(run, out_path, _loop.capture_state(opt, sched, epoch + 1, early, best_state))
            if bar is not None:
                bar.set_postfix(loss=f"{train_loss:.3f}", val_loss=f"{val_loss:.3f}",
                                val_acc=f"{val_acc:.3f}")
                bar.update(1)
            if callback is not None:
                callback(epoch + 1, cfg.epochs, metrics)
            if stop:
                stopped_early = True
                break
    if bar is not None:
        bar.close()
    complete = stopped_early or run.epoch >= cfg.epochs
    if complete and best_state is not None:
        net.load_state_dict(best_state)
    _finish(run, net, data, device, autocast, run.epoch, time.perf_counter() - t_all)
    run.metrics.update(best_epoch=early["best_epoch"], stopped_early=stopped_early,
                       complete=complete)
    if prev is not None:
        run.metrics["train_seconds"] += float(prev.metrics.get("train_seconds") or 0.0)
    _save(run, out_path, None if complete else _loop.capture_state(opt, sched, run.epoch, early, best_state))
    net.eval()
    return run


def _finish(run: Run, net, data, device, autocast, epochs: int, seconds: float) -> None:
    logits, y = _loop.predict(net, data.test, device, autocast=autocast)
    m = _loop.classification_metrics(logits, y, data.class_names)
    run.metrics = {"test_accuracy": m["accuracy"], "test_loss": m["loss"],
                   "per_class": m["per_class"], "confusion": m["confusion"],
                   "epochs": epochs, "train_seconds": seconds, "device": str(device),
                   "n_train": len(data.train), "n_val": len(data.val), "n_test": len(data.test)}


def _early_stopping(cfg: TrainConfig, early: dict[str, Any], epoch: int, val_loss: float) -> bool:
    best = early["best_val_loss"]
    if best is None or val_loss < best:
        early.update(best_val_loss=val_loss, best_epoch=epoch, bad_epochs=0)
        return False
    early["bad_epochs"] += 1
    return cfg.early_stopping is not None and early["bad_epochs"] >= cfg.early_stopping


def _make_monitor(net: nn.Module, cfg: TrainConfig, history, scaler=None):
    if not cfg.monitor:
        return None
    try:
        from explain.monitor import TrainingMonitor
    except ImportError:  # pragma: no cover
        return None
    import inspect
    kwargs: dict[str, Any] = {"every": cfg.monitor_every}
    if scaler is not None:  # AMP: overflows are the scaler's, the BPTT curve is unscaled
        kwargs["scaler"] = scaler
    if history is not None and "history" in inspect.signature(TrainingMonitor).parameters:
        kwargs["history"] = history
    return TrainingMonitor(net, **kwargs)


def _progress(show: bool, start: int, total: int, model: Any, data: str):
    if not show:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=start, desc=f"train {model} on {data}", unit="epoch",
                leave=True, dynamic_ncols=True)

