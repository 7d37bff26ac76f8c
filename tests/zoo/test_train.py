"""The trainer: config validation, exact resume, early stopping, divergence, bad data."""

import numpy as np
import pytest
import torch

import zoo
from explain.errors import (
    DataMismatchError,
    InvalidInputError,
    TrainingDivergedError,
    UnknownNameError,
)

FAST = dict(progress=False, monitor=False)


def _weights_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_config_errors_name_the_parameter():
    with pytest.raises(InvalidInputError, match=r"'epochs' parameter of TrainConfig must be an int >= 1\. Got 0"):
        zoo.TrainConfig(epochs=0)
    with pytest.raises(InvalidInputError, match=r"'optimizer'.*one of 'sgd'.*Got 'adm'.*Did you mean 'adam'"):
        zoo.TrainConfig(optimizer="adm")
    with pytest.raises(UnknownNameError, match="Did you mean 'lr'"):
        zoo.train("cnn", "digits", lrr=0.1, **FAST)


def test_unknown_preset_lists_closest():
    with pytest.raises(UnknownNameError, match="Did you mean 'cnn-mnist'"):
        zoo.train(preset="cnn-minst", **FAST)


def test_train_returns_run_with_metrics_and_history(tmp_path):
    run = zoo.train("mlp", "digits", out=tmp_path / "r", epochs=2, progress=False)
    assert run.epoch == 2 and run.metrics["complete"] is True
    assert 0.5 < run.metrics["test_accuracy"] <= 1.0
    assert set(run.metrics["per_class"]) == {str(i) for i in range(10)}
    assert sum(c["support"] for c in run.metrics["per_class"].values()) == run.metrics["n_test"]
    assert run.history is not None and run.history.epochs["epoch"] == [1, 2]
    assert all(v is not None for v in run.history.epochs["val_loss"])
    loaded = zoo.load_run(tmp_path / "r")
    assert not loaded.model.training
    assert _weights_equal(run.model, loaded.model)
    assert loaded.history.epochs["val_acc"] == run.history.epochs["val_acc"]


@pytest.mark.parametrize("model,scheduler", [("cnn", "cosine"), ("mlp", "onecycle")])
def test_resume_is_bit_identical(tmp_path, model, scheduler):
    # dropout (global RNG), BatchNorm buffers (cnn), Adam state and a schedule all carry over
    kw = dict(epochs=4, scheduler=scheduler, model_kwargs={"dropout": 0.3}, **FAST)
    straight = zoo.train(model, "digits", out=tmp_path / "a", **kw)
    half = zoo.train(model, "digits", out=tmp_path / "b", stop_after=2, **kw)
    assert half.epoch == 2 and half.metrics["complete"] is False
    resumed = zoo.train(model, "digits", out=tmp_path / "b", resume=True, **kw)
    assert resumed.epoch == 4
    assert _weights_equal(straight.model, resumed.model)


def test_resume_with_monitor_keeps_history(tmp_path):
    kw = dict(epochs=4, progress=False, model_kwargs={"dropout": 0.2})
    straight = zoo.train("mlp", "digits", out=tmp_path / "a", **kw)
    zoo.train("mlp", "digits", out=tmp_path / "b", stop_after=2, **kw)
    resumed = zoo.train("mlp", "digits", out=tmp_path / "b", resume=True, **kw)
    assert _weights_equal(straight.model, resumed.model)
    assert resumed.history.epochs["epoch"] == [1, 2, 3, 4]


def test_resume_without_state_is_a_clear_error(tmp_path):
    zoo.train("mlp", "digits", out=tmp_path / "r", epochs=1, **FAST)
    with pytest.raises(InvalidInputError, match="no resume state"):
        zoo.train("mlp", "digits", out=tmp_path / "r", epochs=2, resume=True, **FAST)


def test_early_stopping_restores_best_weights(tmp_path):
    run = zoo.train("mlp", "digits", epochs=40, early_stopping=1, lr=0.05, optimizer="sgd+momentum",
                    **FAST)
    best = run.metrics["best_epoch"]
    assert run.metrics["stopped_early"] is True
    assert run.epoch == best + 1  # patience 1: one bad epoch after the best


def test_non_finite_loss_stops_and_keeps_last_good_run(tmp_path):
    out = tmp_path / "r"
    with pytest.raises(TrainingDivergedError, match=r"non-finite in epoch \d+ .*Lower the learning rate"):
        zoo.train("mlp", "digits", out=out, epochs=6, lr=1e6, optimizer="sgd",
                  **FAST)
    kept = zoo.load_run(out)
    assert all(torch.isfinite(p).all() for p in kept.model.parameters())


def test_class_count_mismatch():
    model = zoo.create_model("cnn", input_shape=(1, 8, 8), num_classes=3)
    with pytest.raises(DataMismatchError, match="3 output classes but dataset 'digits' has 10"):
        zoo.train(model, "digits", epochs=1, **FAST)


def test_labels_out_of_range_and_empty_dataset():
    x = np.random.default_rng(0).normal(size=(60, 5)).astype("float32")
    y = np.arange(60) % 3
    bundle = zoo.from_arrays(x, y)
    bundle.train.tensors[1][0] = 7  # corrupt a label after validation
    with pytest.raises(DataMismatchError, match=r"must be in \[0, 2\]; got \[7\] at train positions \[0\]"):
        zoo.train("mlp", bundle, epochs=1, **FAST)
    from dataclasses import replace
    empty_val = replace(bundle, val=zoo.TensorPairDataset(torch.empty(0, 5), torch.empty(0, dtype=torch.long)))
    with pytest.raises(InvalidInputError, match="The 'val' split of dataset .* is empty"):
        zoo.train("mlp", empty_val, epochs=1, **FAST)


def test_own_module_trains_without_out():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    run = zoo.train(net, "digits", epochs=5, lr=1e-2, **FAST)
    assert run.metrics["test_accuracy"] > 0.7
    with pytest.raises(InvalidInputError, match="out= needs a zoo model"):
        zoo.train(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)), "digits",
                  epochs=1, out="/tmp/never", **FAST)


@pytest.mark.parametrize("optimizer", ["sgd", "sgd+momentum", "adam", "adamw", "adagrad", "rmsprop"])
def test_every_optimizer_learns(optimizer):
    lr = {"sgd": 0.3, "sgd+momentum": 0.05, "adagrad": 0.05}.get(optimizer, 3e-3)
    run = zoo.train("mlp", "digits", epochs=5, optimizer=optimizer, lr=lr, l1=1e-6,
                    weight_decay=1e-4, grad_clip=5.0, **FAST)
    assert run.metrics["test_accuracy"] > 0.6


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_amp_training(tmp_path):
    run = zoo.train("cnn", "digits", out=tmp_path / "g", epochs=2, device="cuda", progress=False)
    assert run.metrics["device"].startswith("cuda")
    assert run.metrics["test_accuracy"] > 0.5
    assert zoo.load_run(tmp_path / "g").metrics["device"].startswith("cuda")
