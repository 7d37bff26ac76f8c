"""Known answers on tiny models, targets, token ids, fallbacks and train-mode models."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from explain.attribution import attribute, get_explainer, list_methods
from tests.fixtures.models import (
    BagNet,
    FunctionalAct,
    GRUNet,
    IntTabular,
    MaskedMLP,
    ReusedAct,
    Rounding,
    TinyCNN,
    cases,
)


@pytest.fixture
def linear():
    model = nn.Linear(3, 2).eval()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]]))
        model.bias.copy_(torch.tensor([0.1, -0.2]))
    return model


def test_list_methods_names_every_registered_method():
    assert set(list_methods()) == {
        "integrated_gradients", "saliency", "input_x_gradient", "deeplift", "gradient_shap",
        "smoothgrad", "occlusion", "feature_ablation", "grad_cam", "shap_gradient",
        "shap_deep", "shap_kernel"}
    assert get_explainer("saliency").name == "saliency"


def test_integrated_gradients_on_a_linear_model_is_x_minus_baseline_times_w(linear):
    x = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]])
    b = torch.tensor([[0.5, 0.5, 0.5]])
    a = attribute(linear, x, target=0, baselines=b, n_steps=8)
    assert torch.allclose(a.values, (x - b) * linear.weight[0].detach(), atol=1e-5)
    assert a.method == "integrated_gradients" and a.requested_method == "integrated_gradients"
    assert a.convergence_delta.shape == (2,) and float(a.convergence_delta.abs().max()) < 1e-4
    assert torch.equal(a.baselines, b.expand(2, 3))


def test_saliency_on_a_linear_model_is_abs_w(linear):
    a = attribute(linear, torch.randn(4, 3), target=0, method="saliency")
    assert torch.allclose(a.values, linear.weight[0].abs().detach().expand(4, 3))
    assert a.baselines is None


@pytest.mark.parametrize("method", ["deeplift", "input_x_gradient", "shap_deep",
                                    "occlusion", "feature_ablation", "shap_kernel"])
def test_exact_methods_on_a_linear_model_give_x_times_w(linear, method):
    x = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]])
    a = attribute(linear, x, target=1, method=method)
    assert a.method == method
    assert torch.allclose(a.values, x * linear.weight[1].detach(), atol=1e-4)


def test_sampling_methods_on_a_linear_model_are_close_to_x_times_w(linear):
    x = torch.tensor([[1.0, 2.0, 3.0]])
    expected = x * linear.weight[0].detach()
    for method in ("gradient_shap", "shap_gradient"):
        a = attribute(linear, x, target=0, method=method)
        assert torch.allclose(a.values, expected, atol=1e-4), method
    smooth = attribute(linear, x, target=0, method="smoothgrad")
    assert torch.allclose(smooth.values, linear.weight[0].abs().detach()[None], atol=1e-5)


def test_target_defaults_to_the_predicted_class_and_accepts_int_and_per_sample(linear):
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, -1.0]])  # logits favour 0, then 1
    predicted = attribute(linear, x, method="saliency")
    assert predicted.target.tolist() == linear(x).argmax(1).tolist() == [0, 1]
    assert attribute(linear, x, target=1, method="saliency").target.tolist() == [1, 1]
    per = attribute(linear, x, target=torch.tensor([1, 0]), method="saliency")
    assert per.target.tolist() == [1, 0]
    assert torch.allclose(per.values[0], linear.weight[1].abs().detach())
    assert attribute(linear, x, target=[0, 1], method="saliency").target.tolist() == [0, 1]
    import numpy as np
    assert attribute(linear, x, target=np.array([1, 1]), method="saliency").target.tolist() == [1, 1]
    assert attribute(linear, x, target=np.int64(0), method="saliency").target.tolist() == [0, 0]


def test_token_ids_are_attributed_per_token_with_padding_at_zero():
    model = BagNet().eval()
    ids = torch.tensor([[3, 4, 5, 0, 0], [6, 7, 1, 2, 0]])
    a = attribute(model, ids, target=0, n_steps=8)
    # f is linear in the embeddings: IG = (emb(id) - emb(0)) . w, emb(0) = 0 (padding_idx)
    expected = (model.emb(ids) @ model.fc.weight[0]).detach()
    assert a.values.shape == (2, 5)
    assert torch.allclose(a.values, expected, atol=1e-5)
    assert torch.all(a.values[ids == 0] == 0)
    assert torch.equal(a.baselines, torch.zeros_like(ids))


def test_transformer_text_attributions_complete_and_ignore_padding():
    model, ids = cases()["text"]
    a = attribute(model, ids, n_steps=256, batch_size=512)
    assert a.values.shape == ids.shape and torch.all(a.values[ids == 0] == 0)
    assert float(a.convergence_delta.abs().max()) < 0.02
    assert a.values.abs().sum() > 0.1


def test_grad_cam_upsamples_to_the_input_and_refuses_non_images():
    model, x = cases()["cnn"]
    a = attribute(model, x, method="grad_cam")
    assert a.values.shape == x.shape and float(a.values.min()) >= 0
    assert torch.equal(a.values[:, 0], a.values[:, 0])  # one map per sample
    with pytest.raises(ValueError, match="Grad-CAM needs image inputs.*'saliency'"):
        attribute(nn.Linear(3, 2).eval(), torch.randn(2, 3), method="grad_cam")


@pytest.mark.parametrize("model_cls, needle", [
    (ReusedAct, "modules reused within one forward pass: \\['act'\\]"),
    (FunctionalAct, "functional non-linearities outside activation modules"),
])
def test_deeplift_falls_back_to_integrated_gradients_and_says_why(model_cls, needle):
    model = model_cls().eval()
    x = torch.randn(3, 4)
    a = attribute(model, x, method="deeplift", n_steps=16)
    assert a.method == "integrated_gradients" and a.requested_method == "deeplift"
    assert len(a.warnings) == 1 and a.warnings[0].startswith("deeplift -> integrated_gradients")
    assert re.search(needle, a.warnings[0])
    ig = attribute(model, x, method="integrated_gradients", n_steps=16)
    assert torch.allclose(a.values, ig.values)


def test_shap_deep_falls_back_to_shap_gradient_on_a_recurrent_model():
    model, x = cases()["gru"]
    a = attribute(model, x, method="shap_deep", nsamples=8)
    assert a.method == "shap_gradient"
    assert "a recurrent layer" in a.warnings[0]


def test_non_differentiable_model_falls_back_to_feature_ablation():
    model = Rounding().eval()
    a = attribute(model, torch.randn(3, 4), target=0, method="saliency")
    assert a.method == "feature_ablation"
    assert "gradient is zero everywhere although the output changes" in a.warnings[0]
    assert a.values.abs().sum() > 0


def test_integer_inputs_without_embedding_fall_back_to_feature_ablation():
    model = IntTabular().eval()
    x = torch.tensor([[1, 2, 3, 4]])
    a = attribute(model, x, target=0)
    assert a.method == "feature_ablation" and "integer inputs" in a.warnings[0]
    assert torch.allclose(a.values, x.float() * model.a.weight[0].detach(), atol=1e-5)


def test_train_mode_model_is_explained_in_eval_mode_and_left_in_train_mode():
    model = TinyCNN().train()
    x = torch.randn(2, 1, 8, 8)
    a = attribute(model, x, target=0, method="saliency")
    twin = TinyCNN()
    twin.load_state_dict(model.state_dict())
    b = attribute(twin.eval(), x, target=0, method="saliency")
    assert model.training and all(m.training for m in model.modules())
    assert "train mode" in a.warnings[0] and b.warnings == ()
    assert torch.allclose(a.values, b.values)  # dropout off, BatchNorm running stats


def test_additional_forward_args_are_passed_through():
    model = MaskedMLP().eval()
    x = torch.ones(2, 4)
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0]])
    a = attribute(model, x, target=0, additional_forward_args=(mask,), n_steps=4)
    assert torch.allclose(a.values, x * mask * model.fc.weight[0].detach(), atol=1e-5)


def test_sequence_baseline_keeps_lengths_so_integrated_gradients_complete():
    model, x = cases()["gru"]
    a = attribute(model, x, n_steps=64)
    assert a.values.shape == x.shape and a.warnings == ()
    assert torch.all(a.values[:, 4:] == 0)              # padding frames
    assert float(a.convergence_delta.abs().max()) < 0.02


def test_results_do_not_depend_on_the_batch_size():
    model, x = cases()["cnn"]
    small = attribute(model, x, target=1, batch_size=7, n_steps=10)
    large = attribute(model, x, target=1, batch_size=1000, n_steps=10)
    assert torch.allclose(small.values, large.values, atol=1e-6)
    assert set(small.timings) == {"preflight", "probe", "attribute", "total", "rows_per_pass"}
    assert small.timings["rows_per_pass"] == 7.0 and small.plan.reason == "given"


def test_gru_uses_explicit_method_and_reports_the_requested_one():
    a = attribute(GRUNet().eval(), torch.randn(2, 3, 3), method="deeplift", n_steps=8)
    assert (a.requested_method, a.method) == ("deeplift", "integrated_gradients")


class _MaskedBag(nn.Module):
    """Token ids plus an explicit padding mask argument."""

    def __init__(self) -> None:
        super().__init__()
        self.emb, self.fc = nn.Embedding(10, 3), nn.Linear(3, 2)

    def forward(self, ids, keep):
        return self.fc((self.emb(ids) * keep[..., None]).sum(1))


def test_token_ids_with_an_explicit_mask_argument():
    model = _MaskedBag().eval()
    ids = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    keep = (ids != 0).float()
    a = attribute(model, ids, target=1, additional_forward_args=keep, n_steps=4)
    emb0 = model.emb.weight[0].detach()  # no padding_idx: the pad embedding is not zero
    expected = ((model.emb(ids).detach() - emb0) @ model.fc.weight[1].detach()) * keep
    assert torch.allclose(a.values, expected, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_recurrent_model_on_cuda_in_eval_mode():
    model = GRUNet().cuda().eval()
    x = torch.randn(4, 5, 3, device="cuda")
    a = attribute(model, x, n_steps=8)
    assert not model.training and a.values.device.type == "cpu"
    assert any("cuDNN switched off" in w for w in a.warnings)


class _SinNet(nn.Module):
    """Conv, ReLU, max pool, then a functional ``sin`` that DeepLIFT has no rule for, so its
    convergence delta is far from zero (and a wrong delta would show)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.act, self.pool = nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2)
        self.fc = nn.Linear(36, 3)

    def forward(self, x):
        return self.fc(torch.sin(3 * self.pool(self.act(self.conv(x))).flatten(1)))


def test_deeplift_delta_comes_from_its_one_rule_pass_and_equals_captums():
    from captum.attr import DeepLift as CaptumDeepLift

    from explain.attribution.base import Chunk, Job
    from explain.attribution.methods.deeplift import DeepLift
    from explain.attribution.prepare import PlainForward
    from explain.attribution.structure import Trace

    torch.manual_seed(0)
    model = _SinNet().eval()
    x, b = torch.randn(5, 1, 8, 8), 0.1 * torch.randn(5, 1, 8, 8)
    t = torch.tensor([0, 1, 2, 0, 1])
    rows: list[int] = []
    hook = model.conv.register_forward_pre_hook(lambda _m, i: rows.append(i[0].shape[0]))
    job = Job(model=model, card=None, modality="image", inputs=x, x=x, baselines=b, args=(),
              forward=PlainForward(model), target=t, trace=Trace())

    values, delta = DeepLift(model)._attribute(job, Chunk(x, b, t, ()), 64)
    hook.remove()
    ref, ref_delta = CaptumDeepLift(PlainForward(model)).attribute(
        x, baselines=b, target=t, return_convergence_delta=True)

    assert rows == [10]                      # inputs and baselines in one pass, no re-run
    assert torch.allclose(values, ref, atol=1e-6)
    assert float(ref_delta.abs().min()) > 1e-2
    assert torch.allclose(delta, ref_delta, atol=1e-5)


class _LengthMean(nn.Module):
    """Mean over the valid frames (the length read from trailing all-zero padding, as a packed
    RNN reads it) times a weight per class; linear in ``x`` once the length is fixed."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1.0, -2.0]))

    def forward(self, x):
        idx = torch.arange(x.shape[1])
        length = torch.where((x != 0).any(-1), idx + 1, torch.zeros_like(idx)).amax(1)
        return (x.sum((1, 2)) / length.clamp(min=1))[:, None] * self.w


def test_smoothgrad_keeps_the_padding_of_sequences():
    from explain.card import ModelCard

    model = _LengthMean().eval()
    model.card = ModelCard(name="len-mean", modality="sequence", input_shape=(6, 2),
                           input_dtype="float32", num_classes=2, class_names=("a", "b"))
    x = torch.zeros(2, 6, 2)
    x[0, :4], x[1, :2] = 1.0, 0.5                       # lengths 4 and 2 of 6 frames

    a = attribute(model, x, target=1, method="smoothgrad", nt_samples=8)

    expected = torch.zeros(2, 6, 2)
    expected[0, :4], expected[1, :2] = 2.0 / 4, 2.0 / 2   # |w_1| / length, 0 on padding
    assert torch.allclose(a.values, expected, atol=1e-6)
