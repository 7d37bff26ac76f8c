"""Bad input: every case raises a typed error whose message names the input and the fix."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from explain import (
    DataMismatchError,
    InvalidInputError,
    InvalidTypeError,
    ModelCard,
    UnknownNameError,
)
from explain.attribution import attribute
from tests.fixtures.models import TinyCNN


@pytest.fixture
def mlp():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).eval()


def test_nan_and_inf_inputs_name_their_positions(mlp):
    x = torch.zeros(3, 4)
    x[1, 2] = float("nan")
    x[2, 0] = float("inf")
    with pytest.raises(InvalidInputError,
                       match=r"must be finite\. Got 2 NaN/inf values, at positions "
                             r"\[\[1, 2\], \[2, 0\]\].*nan_to_num"):
        attribute(mlp, x)


def test_empty_batch_is_refused(mlp):
    with pytest.raises(InvalidInputError, match=r"at least one sample.*Got an empty batch of "
                                                r"shape \[0, 4\]"):
        attribute(mlp, torch.zeros(0, 4))


def test_inputs_that_are_not_tensors_are_refused(mlp):
    with pytest.raises(InvalidTypeError, match="must be a torch.Tensor.*Got list"):
        attribute(mlp, [[0.0, 1.0, 2.0, 3.0]])
    with pytest.raises(InvalidTypeError, match="must be a torch.nn.Module"):
        attribute(lambda x: x, torch.zeros(1, 4))


def test_a_shape_the_model_cannot_take_wraps_the_models_error(mlp):
    with pytest.raises(DataMismatchError) as err:
        attribute(mlp, torch.zeros(2, 5))
    msg = str(err.value)
    assert "Got [2, 5] float32 instead" in msg and "The model said: mat1 and mat2" in msg
    assert isinstance(err.value.__cause__, RuntimeError)


def test_the_card_names_the_expected_shape_and_dtype():
    model = TinyCNN().eval()
    card = ModelCard(name="tiny", modality="image", input_shape=(1, 8, 8),
                     input_dtype="float32", num_classes=3, class_names=("a", "b", "c"))
    with pytest.raises(DataMismatchError, match=r"expected \[batch, 1, 8, 8\] float32 \(from "
                                                r"the model card of 'tiny'\)\. Got \[2, 3, 8, 8\]"):
        attribute(model, torch.zeros(2, 3, 8, 8), card=card)
    with pytest.raises(DataMismatchError, match=r"Got \[2, 1, 8, 8\] int64 instead; convert"):
        attribute(model, torch.zeros(2, 1, 8, 8, dtype=torch.long), card=card)


def test_a_dtype_the_model_cannot_take_is_wrapped(mlp):
    with pytest.raises(DataMismatchError, match=r"Got \[1, 4\] float64 instead.*model said"):
        attribute(mlp, torch.zeros(1, 4, dtype=torch.float64))


def test_target_out_of_range_names_the_valid_range(mlp):
    with pytest.raises(InvalidInputError, match=r"valid range 0\.\.2 \(the model has 3 outputs\)"
                                                r"\. Got \[3\] at sample\(s\) \[1\]"):
        attribute(mlp, torch.zeros(2, 4), target=[0, 3])
    with pytest.raises(InvalidInputError, match="valid range 0..2"):
        attribute(mlp, torch.zeros(2, 4), target=-1)
    with pytest.raises(InvalidInputError, match="one int or 2 ints"):
        attribute(mlp, torch.zeros(2, 4), target=[0, 1, 2])
    with pytest.raises(InvalidTypeError, match="integer class indices"):
        attribute(mlp, torch.zeros(2, 4), target=torch.tensor([0.5, 1.0]))
    with pytest.raises(InvalidTypeError, match="integer class indices"):
        attribute(mlp, torch.zeros(2, 4), target=True)
    with pytest.raises(InvalidTypeError, match="None, an int or one int per sample. Got dict"):
        attribute(mlp, torch.zeros(2, 4), target={"a": 1})


def test_unknown_method_lists_the_closest_names(mlp):
    with pytest.raises(UnknownNameError, match="Unknown attribution method 'integrated_gradient'"
                                               r"\. Did you mean 'integrated_gradients'"):
        attribute(mlp, torch.zeros(1, 4), method="integrated_gradient")


def test_unknown_and_invalid_options_are_named(mlp):
    with pytest.raises(UnknownNameError, match="Unknown option of 'integrated_gradients' "
                                               "'nsteps'. Did you mean 'n_steps'"):
        attribute(mlp, torch.zeros(1, 4), nsteps=10)
    with pytest.raises(InvalidInputError, match="The 'n_steps' parameter of "
                                                "integrated_gradients must be an int >= 1. Got 0"):
        attribute(mlp, torch.zeros(1, 4), n_steps=0)


def test_bad_baselines_are_named(mlp):
    with pytest.raises(InvalidInputError, match="'baselines'.*must broadcast.*Got shape \\[3\\]"):
        attribute(mlp, torch.zeros(2, 4), baselines=torch.zeros(3))
    with pytest.raises(InvalidInputError, match="'baselines'.*must be finite"):
        attribute(mlp, torch.zeros(2, 4), baselines=float("nan"))


def test_inputs_on_another_device_are_moved_with_a_warning(mlp, monkeypatch):
    # CPU-only stand-in for a second device: the model reports "cpu:0", the inputs are "cpu".
    from explain._core import tensors
    monkeypatch.setattr(tensors, "device_of", lambda model: torch.device("cpu:0"))
    a = attribute(mlp, torch.randn(2, 4), method="saliency")
    assert a.warnings == ("inputs were on cpu, the model on cpu:0: moved the inputs to cpu:0",)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_inputs_for_a_cuda_model_are_moved_and_warned(mlp):
    a = attribute(mlp.cuda(), torch.randn(2, 4), method="saliency")
    assert "moved the inputs to cuda" in a.warnings[0]


def test_a_model_that_does_not_return_logits_is_refused():
    with pytest.raises(DataMismatchError, match=r"logits shaped \[batch, classes\]"):
        attribute(nn.Flatten(0).eval(), torch.zeros(2, 4))
