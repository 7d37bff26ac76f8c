"""``zoo.train``: train a zoo model (or a preset) on a dataset, recording its health.

The stages, one function each: :func:`_resolve` (preset + arguments -> a :class:`_Plan`),
:func:`_build` (model, optimizer, resume state -> a :class:`_Session`), :func:`_run_epochs`
(the loop: :func:`_train_epoch` and :func:`_end_epoch` per epoch), :func:`_complete` (best
weights, test metrics, the final save).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from explain.errors import InvalidInputError, InvalidTypeError, TrainingDivergedError
from zoo import _loop
from zoo import distributed as zdist
from zoo.checkpoint import read_manifest, read_resume_state, save_run
from zoo.config import TrainConfig
from zoo.data.base import DatasetBundle
from zoo.run import Run
from zoo.writer import check_space, existing_run, refuse_existing, save_sizes, writer_lock

__all__ = ["train"]

Callback = Callable[[int, int, dict[str, Any]], None]
State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class _Plan:
    """What to train: the preset filled in, explicit arguments over it, the data loaded."""

    model: str | nn.Module
    data: DatasetBundle
    dataset_name: str | None
    model_kwargs: dict[str, Any]
    dataset_options: dict[str, Any]
    config: TrainConfig
    preset: str | None


@dataclass
class _Session:
    """Everything the epoch loop reads and updates, built once by :func:`_build`."""

    net: nn.Module
    data: DatasetBundle
    cfg: TrainConfig
    device: torch.device
    opt: torch.optim.Optimizer
    sched: Any
    autocast: torch.dtype | None
    scaler: Any
    lossf: nn.Module
    run: Run
    out: Path | None
    monitor: Any
    history: Any
    early: dict[str, Any]
    best_state: State | None
    start_epoch: int
    prev: Run | None
    started: float = 0.0
    defer: bool = False  # overwriting: only the final save commits, the old run stays till then


def _resolve(model, dataset, preset, model_kwargs, dataset_options, config) -> _Plan:
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
    return _Plan(model, dataset, dataset_name, mkw, dopts, TrainConfig().replace(**cfg), preset)


def _build(plan: _Plan, out: Path | None, resume: tuple[dict[str, Any], State] | None,
           device: torch.device) -> _Session:
    """The model, optimizer, schedule and run record; restored from ``out`` when resuming."""
    cfg, data = plan.config, plan.data
    net, model_name, model_kw = _loop.build_model(plan.model, data, plan.model_kwargs)
    if out is not None and model_name is None:
        raise InvalidInputError(
            "out= needs a zoo model (a registered name, or a module with a zoo card): a run folder "
            "rebuilds the architecture by name. For your own nn.Module, call train(..., out=None).")
    _loop.check_data(net, data)
    net.to(device)
    card = _loop.named_card(net, data)
    opt = _loop.build_optimizer(net, cfg)
    sched = _loop.build_scheduler(opt, cfg, zdist.steps_per_epoch(data.sizes()["train"],
                                                                  cfg.batch_size))  # DDP: per rank
    autocast = _loop.amp_dtype(cfg, device)
    scaler = torch.amp.GradScaler("cuda") if autocast == torch.float16 else None
    run = Run(model=net, card=card, config=cfg, history=None, metrics={},
              model_name=model_name or type(net).__name__, model_kwargs=model_kw or {},
              dataset_name=plan.dataset_name,
              dataset_options=plan.dataset_options if plan.dataset_name else {},
              preset=plan.preset, vocab=data.vocab, tokenizer=data.tokenizer)
    s = _Session(net=net, data=data, cfg=cfg, device=device, opt=opt, sched=sched,
                 autocast=autocast, scaler=scaler,
                 lossf=nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing), run=run, out=out,
                 monitor=None, history=None, early={"best_val_loss": None, "best_epoch": None,
                                                    "bad_epochs": 0},
                 best_state=None, start_epoch=0, prev=None)
    if resume is not None and out is not None:
        _restore(s, out, *resume)
    s.run.history, s.run.epoch = s.history, s.start_epoch
    s.monitor = _loop.make_monitor(net, cfg, s.history, scaler)
    return s


def _read_resume(out: Path | None, resume: bool) -> tuple[dict[str, Any], State] | None:
    if not resume:
        return None
    if out is None:
        raise InvalidInputError("resume=True needs out= (the run folder to continue).")
    return read_resume_state(out)


def _restore(s: _Session, out: Path, js: dict[str, Any], tensors: State) -> None:
    """Continue the run in ``out``: weights, optimizer, schedule, RNG, history."""
    from zoo.checkpoint import load_run

    s.prev = load_run(out, device=s.device)
    s.net.load_state_dict(s.prev.model.state_dict())
    s.best_state = _loop.restore_state(s.opt, s.sched, js, tensors, s.device)
    s.start_epoch, s.early = int(js["epoch"]), dict(js["early_stopping"])
    s.history = s.prev.history


def train(model: str | nn.Module | None = None, dataset: str | DatasetBundle | None = None, *,
          preset: str | None = None, out: str | os.PathLike | None = None, resume: bool = False,
          model_kwargs: dict[str, Any] | None = None,
          dataset_options: dict[str, Any] | None = None, progress: bool = True,
          callback: Callback | None = None, stop_after: int | None = None,
          overwrite: bool = False, **config: Any) -> Run:
    """Train a model and return its :class:`zoo.Run` (also written to ``out`` if given).

    Parameters
    ----------
    model : a registered model name, an ``nn.Module``, or ``None`` to take the preset's.
    dataset : a registered dataset name, a :class:`zoo.DatasetBundle`, or ``None`` (preset's).
    preset : a name from :func:`zoo.list_presets`; explicit arguments override it.
    out : run folder, written atomically after every epoch (with resume state). One writer at a
        time: a second one gets :class:`explain.errors.RunLockedError`. A folder that already
        holds a run is refused (:class:`explain.errors.RunExistsError`) unless ``resume`` or
        ``overwrite`` says what to do with it.
    resume : continue the run in ``out`` from its last completed epoch (bit-exact on CPU).
    overwrite : replace the run in ``out``. The old run stays whole and readable until the new
        one is saved at the end of this call; epochs in between are not checkpointed.
    model_kwargs, dataset_options : extra arguments for the model factory / dataset loader.
    progress : show a progress bar (tqdm) per epoch.
    callback : ``callback(epoch, epochs, metrics)`` after every epoch (e.g. a dashboard bar).
    stop_after : train at most this many epochs in this call (resume later with ``resume=True``).
    **config : :class:`zoo.TrainConfig` fields, e.g. ``epochs=5, lr=1e-3, device="cpu"``.

    Raises
    ------
    RunExistsError
        ``out`` already holds a run and neither ``resume`` nor ``overwrite`` was given.
    RunLockedError
        Another process (or thread) is writing to ``out``; the message names its pid and host.
    RunWriteError
        The run cannot be written (disk full -- checked before training starts --, read-only,
        permission denied, path too long); the previous run in ``out`` is unchanged.
    TrainingDivergedError
        The loss became non-finite; the last good epoch is kept in ``out`` (when overwriting:
        the previous run is kept instead).

    Examples
    --------
    >>> import zoo
    >>> run = zoo.train(preset="mlp-digits", epochs=1, progress=False, monitor=False)
    >>> run.epoch, run.metrics["complete"], run.metrics["n_test"]
    (1, True, 180)
    """
    plan = _resolve(model, dataset, preset, model_kwargs, dataset_options, config)
    if resume and overwrite:
        raise InvalidInputError(
            "zoo.train got resume=True and overwrite=True: choose one -- resume continues the "
            "run in out=, overwrite replaces it.")
    if out is None:
        return _train(plan, None, resume, False, progress, callback, stop_after)
    out_path = Path(out)
    if resume:
        read_manifest(out_path)  # a missing folder is a clear error before any lock is made
    if not zdist.is_main():  # DDP: rank 0 alone locks, checks and writes the run folder
        return _train(plan, out_path, resume, overwrite, progress, callback, stop_after)
    with writer_lock(out_path):
        found = existing_run(out_path)
        if found is not None and not (resume or overwrite):
            raise refuse_existing(found)
        return _train(plan, out_path, resume, found is not None and overwrite, progress,
                      callback, stop_after)


def _train(plan: _Plan, out: Path | None, resume: bool, defer: bool, progress: bool,
           callback: Callback | None, stop_after: int | None) -> Run:
    """Build the session, check the disk, run the epochs, save; ``out`` is locked if given."""
    resume_state = _read_resume(out, resume)
    device = _loop.resolve_device(plan.config.device)
    _loop.seed_everything(plan.config.seed)
    s = _build(plan, out, resume_state, device)
    s.defer = defer
    cfg = s.cfg
    if out is not None:
        check_space(out, *save_sizes(s.net, cfg.optimizer, cfg.early_stopping))
    last_epoch = cfg.epochs if stop_after is None else min(cfg.epochs, s.start_epoch + stop_after)
    bar = _loop.progress_bar(progress and zdist.is_main(), s.start_epoch, cfg.epochs,  # DDP
                             s.run.model_name, s.data.name)
    s.started = time.perf_counter()
    try:
        with s.monitor if s.monitor is not None else contextlib.nullcontext():
            stopped_early = _run_epochs(s, last_epoch, bar, callback)
        if bar is not None:
            bar.close()
        return _complete(s, stopped_early)
    finally:
        # DDP: drop the wrapper also when training raised (diverged, a callback's exception):
        # a DistributedDataParallel kept by the zoo past the user's destroy_process_group would
        # be destroyed at interpreter exit, after its process group
        zdist.release(s.net)


def _run_epochs(s: _Session, last_epoch: int, bar: Any, callback: Callback | None) -> bool:
    """Train epochs ``start_epoch..last_epoch``; True if early stopping ended the loop."""
    for epoch in range(s.start_epoch, last_epoch):
        good_state = {k: v.detach().clone() for k, v in s.net.state_dict().items()}
        t0 = time.perf_counter()
        train_loss, train_acc = _train_epoch(s, epoch)
        if not math.isfinite(train_loss):
            _diverged(s, epoch, good_state)
        metrics = _validate(s, epoch, train_loss, train_acc, t0)
        stop = _end_epoch(s, epoch, metrics)
        if bar is not None:
            bar.set_postfix(loss=f"{train_loss:.3f}", val_loss=f"{metrics['val_loss']:.3f}",
                            val_acc=f"{metrics['val_acc']:.3f}")
            bar.update(1)
        if callback is not None:
            callback(epoch + 1, s.cfg.epochs, metrics)
        if stop:
            return True
    return False


def _train_epoch(s: _Session, epoch: int) -> tuple[float, float]:
    """One pass over the training split; returns the mean loss and the accuracy."""
    cfg, device = s.cfg, s.device
    s.net.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    for xb, yb in zdist.batches(s.data.train, cfg.batch_size, device, seed=cfg.seed,  # DDP
                                epoch=epoch, num_workers=cfg.num_workers):
        loss, logits = _step(s, xb, yb)
        if s.monitor is not None:  # it forks the RNG itself: training stays bit-exact
            s.monitor.step(loss=loss.detach(), target=yb)
        loss_sum += loss.detach() * len(yb)
        correct += (logits.detach().argmax(1) == yb).sum()
        seen += len(yb)
    loss_sum, correct, seen = zdist.sum_over_ranks(loss_sum, correct, seen)  # DDP: all ranks
    return float(loss_sum) / max(seen, 1), float(correct) / max(seen, 1)


def _step(s: _Session, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on a batch; returns the loss and the logits."""
    cfg, opt, scaler = s.cfg, s.opt, s.scaler
    opt.zero_grad(set_to_none=True)
    with torch.autocast(s.device.type, dtype=s.autocast, enabled=s.autocast is not None):
        logits = zdist.ddp(s.net)(xb)  # DDP: gradients averaged over the ranks
        loss = s.lossf(logits.float(), yb)
        if cfg.l1:
            loss = loss + cfg.l1 * _loop.l1_penalty(s.net)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
    else:
        loss.backward()
    if cfg.grad_clip is not None:
        nn.utils.clip_grad_norm_(s.net.parameters(), cfg.grad_clip)
    if scaler is not None:
        scaler.step(opt)
        scaler.update()
    else:
        opt.step()
    s.sched.step()
    return loss, logits




def _diverged(s: _Session, epoch: int, good_state: State) -> None:
    """Keep the last good weights (saved to ``out``) and raise :class:`TrainingDivergedError`."""
    s.net.load_state_dict(good_state)
    _finish(s, epoch)
    s.run.history = s.monitor.history if s.monitor is not None else s.history
    if s.defer:
        kept = f"the previous run in {s.out} was kept"
    else:
        _save(s.run, s.out, None)
        kept = f"the weights of epoch {epoch} were kept{f' in {s.out}' if s.out else ''}"
    cfg = s.cfg
    raise TrainingDivergedError(
        f"The training loss became non-finite in epoch {epoch + 1} (lr={cfg.lr}, "
        f"optimizer={cfg.optimizer}); training stopped and {kept}. Lower the learning rate or "
        f"set grad_clip (e.g. grad_clip=1.0).")


def _validate(s: _Session, epoch: int, train_loss: float, train_acc: float,
              t0: float) -> dict[str, Any]:
    """The epoch's metrics: training loss and accuracy, validation loss and accuracy, lr."""
    logits_v, y_v = zdist.predict(s.net, s.data.val, s.device, autocast=s.autocast)
    val_loss = float(nn.functional.cross_entropy(logits_v, y_v))
    val_acc = float((logits_v.argmax(1) == y_v).double().mean())
    return {"epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc,
            "val_loss": val_loss, "val_acc": val_acc, "lr": s.opt.param_groups[0]["lr"],
            "seconds": time.perf_counter() - t0}


def _end_epoch(s: _Session, epoch: int, metrics: dict[str, Any]) -> bool:
    """Log the epoch, keep the best weights, save the run; True if early stopping says stop."""
    if s.monitor is not None:
        s.monitor.log_epoch(**metrics)
    stop = _loop.early_stopping(s.cfg, s.early, epoch + 1, metrics["val_loss"])
    if s.early["best_epoch"] == epoch + 1 and s.cfg.early_stopping is not None:
        s.best_state = {k: v.detach().clone() for k, v in s.net.state_dict().items()}
    s.run.epoch = epoch + 1
    s.run.history = s.monitor.history if s.monitor is not None else s.history
    if s.out is not None and not s.defer:
        s.run.metrics = {"val_accuracy": metrics["val_acc"], "val_loss": metrics["val_loss"],
                         "complete": False}
        _save(s.run, s.out, _loop.capture_state(s.opt, s.sched, epoch + 1, s.early, s.best_state))
    return stop


def _complete(s: _Session, stopped_early: bool) -> Run:
    """Best weights back (if complete), test metrics, the final save; the model in eval mode."""
    run = s.run
    complete = stopped_early or run.epoch >= s.cfg.epochs
    if complete and s.best_state is not None:
        s.net.load_state_dict(s.best_state)
    _finish(s, run.epoch)
    run.metrics.update(best_epoch=s.early["best_epoch"], stopped_early=stopped_early,
                       complete=complete)
    if s.prev is not None:
        run.metrics["train_seconds"] += float(s.prev.metrics.get("train_seconds") or 0.0)
    state = None if complete else _loop.capture_state(s.opt, s.sched, run.epoch, s.early,
                                                      s.best_state)
    _save(run, s.out, state)
    zdist.release(s.net)  # DDP: the trained model is a plain module again
    s.net.eval()
    return run


def _finish(s: _Session, epochs: int) -> None:
    """Set ``s.run.metrics`` to the test metrics after ``epochs`` epochs."""
    data = s.data
    logits, y = zdist.predict(s.net, data.test, s.device, autocast=s.autocast)
    m = _loop.classification_metrics(logits, y, data.class_names)
    s.run.metrics = {"test_accuracy": m["accuracy"], "test_loss": m["loss"],
                     "per_class": m["per_class"], "confusion": m["confusion"],
                     "epochs": epochs, "train_seconds": time.perf_counter() - s.started,
                     "device": str(s.device),
                     **{f"n_{split}": n for split, n in data.sizes().items()}}


def _save(run: Run, out: Path | None, resume: dict[str, Any] | None) -> None:
    if out is not None and zdist.is_main():  # DDP: rank 0 writes
        save_run(run, out, resume=resume)
