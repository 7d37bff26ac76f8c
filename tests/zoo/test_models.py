"""Conformance tests over every registered model, plus per-model option tests."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load, save
from torch import nn

import zoo
from explain.card import Modality, ModelCard
from explain.errors import DataMismatchError, InvalidInputError, InvalidTypeError
from zoo.models._common import INITS, lengths_from_padding

SMALL = {  # small but non-default options, so the conformance loop stays fast
    "cnn": {},
    "rnn": {"hidden": 16},
    "transformer": {"vocab_size": 300, "d_model": 16, "heads": 2, "ff": 32},
    "mlp": {},
}


def sample_batch(card: ModelCard, batch: int = 4, length: int = 7) -> torch.Tensor:
    """A random batch that follows the card's input spec."""
    g = torch.Generator().manual_seed(1)
    shape = [length if s is None else s for s in card.input_shape]
    if card.input_dtype == "int64":
        vocab = card.kwargs.get("vocab_size", 100)
        return torch.randint(2, vocab, (batch, *shape), generator=g)
    return torch.randn(batch, *shape, generator=g)


def build(name: str, **kw) -> nn.Module:
    return zoo.create_model(name, **{**SMALL.get(name, {}), **kw})


# ---------------------------------------------------------------- conformance over the registry
@pytest.fixture(params=zoo.list_models())
def name(request) -> str:
    return request.param


def test_registry_has_the_four_models():
    assert {"cnn", "rnn", "transformer", "mlp"} <= set(zoo.list_models())


def test_default_construction_has_complete_card(name):
    model = zoo.create_model(name)
    card = model.card
    assert isinstance(card, ModelCard) and card.name == name
    assert card.class_names == tuple(str(i) for i in range(card.num_classes))
    assert card.input_dtype == ("int64" if card.modality is Modality.TEXT else "float32")
    for role, module_name in card.layers.items():
        assert isinstance(model.get_submodule(module_name), nn.Module), role
    json.dumps(card.to_dict())  # kwargs are JSON-serializable
    assert card.kwargs["num_classes"] == card.num_classes
    assert list(card.kwargs["class_names"]) == list(card.class_names)


def test_forward_backward_finite(name):
    model = build(name).train()
    x = sample_batch(model.card)
    logits = model(x)
    assert logits.shape == (4, model.card.num_classes)
    assert torch.isfinite(logits).all()
    nn.functional.cross_entropy(logits, torch.arange(4) % model.card.num_classes).backward()
    for pname, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), pname


def test_rebuild_from_card_kwargs_gives_same_architecture(name):
    model = build(name, class_names=None)
    rebuilt = zoo.create_model(name, **model.card.kwargs)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == shapes
    assert rebuilt.card == model.card


def test_eval_is_deterministic_and_state_dict_round_trips(name):
    model = build(name).eval()
    x = sample_batch(model.card)
    with torch.no_grad():
        first, second = model(x), model(x)
    assert torch.equal(first, second)
    blob = save({k: v.contiguous() for k, v in model.state_dict().items()})
    other = zoo.create_model(name, **model.card.kwargs).eval()
    other.load_state_dict(load(blob))
    with torch.no_grad():
        assert torch.equal(other(x), first)


def test_activations_are_separate_non_inplace_modules(name):
    model = build(name)
    acts = [m for m in model.modules()
            if isinstance(m, (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.LeakyReLU))]
    assert len({id(m) for m in acts}) == len(acts)
    assert not any(getattr(m, "inplace", False) for m in acts)


def test_class_names_and_num_classes_flow_to_card(name):
    model = build(name, num_classes=3, class_names=["a", "b", "c"])
    assert model.card.class_names == ("a", "b", "c")
    assert model(sample_batch(model.card)).shape == (4, 3)


def test_wrong_class_names_length_is_explained(name):
    with pytest.raises(InvalidInputError, match=r"'class_names' parameter of \w+ must have "
                                                r"num_classes=3 entries. Got 2 instead"):
        build(name, num_classes=3, class_names=["a", "b"])


def test_unknown_init_lists_valid_ones(name):
    with pytest.raises(InvalidInputError, match="'init' parameter of .* must be one of 'default', "
                                                "'xavier', 'he', 'small-normal'. Got 'glorot'"):
        build(name, init="glorot")


def test_wrong_input_shape_is_explained(name):
    model = build(name)
    x = sample_batch(model.card)
    with pytest.raises(DataMismatchError, match="expects input of shape"):
        model(x[0])  # a single sample, no batch dimension


# ---------------------------------------------------------------- helpers
def test_lengths_from_padding_counts_inner_zero_frames():
    x = torch.ones(3, 5, 2)
    x[0, 3:] = 0          # length 3
    x[1, 1] = 0           # inner zero frame: length 5
    x[2] = 0              # all padding: length 0
    assert lengths_from_padding(x).tolist() == [3, 5, 0]
    assert lengths_from_padding(torch.tensor([[4, 0, 9, 0, 0]])).tolist() == [3]


def test_lengths_from_padding_rejects_bad_input():
    with pytest.raises(DataMismatchError, match="Got shape \\(4,\\)"):
        lengths_from_padding(torch.ones(4))
    with pytest.raises(InvalidTypeError):
        lengths_from_padding([[1.0]])


# ---------------------------------------------------------------- cnn
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "gelu", "leaky_relu"])
def test_cnn_activations(activation):
    model = zoo.create_model("cnn", activation=activation, channels=[4, 8], hidden=8)
    kinds = {type(m).__name__ for m in model.modules()}
    assert type(model.features[2]).__name__ in kinds
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_cnn_grad_cam_layer_is_last_conv():
    with_bn = zoo.create_model("cnn", channels=[4, 8, 8])
    no_bn = zoo.create_model("cnn", channels=[4, 8], batch_norm=False)
    assert with_bn.card.layers["grad_cam"] == "features.8"
    assert no_bn.card.layers["grad_cam"] == "features.3"
    assert isinstance(no_bn.get_submodule("features.3"), nn.Conv2d)


def test_cnn_other_image_sizes_and_errors():
    model = zoo.create_model("cnn", input_shape=(3, 32, 32), num_classes=5)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    with pytest.raises(InvalidInputError, match="H and W >= 8"):
        zoo.create_model("cnn", input_shape=(1, 3, 3))
    with pytest.raises(InvalidTypeError, match="'channels' parameter of cnn"):
        zoo.create_model("cnn", channels=16)
    with pytest.raises(DataMismatchError, match=r"\[B, 1, 28, 28\]"):
        model = zoo.create_model("cnn")
        model(torch.randn(2, 3, 28, 28))


def test_unknown_activation_lists_valid_ones():
    with pytest.raises(InvalidInputError, match="'activation' parameter of cnn must be one of "
                                                "'relu', 'tanh', 'sigmoid', 'gelu', 'leaky_relu'. "
                                                "Got 'relux' instead. Did you mean 'relu'"):
        zoo.create_model("cnn", activation="relux")


# ---------------------------------------------------------------- inits (shared helper)
@pytest.mark.parametrize("init", INITS)
def test_inits_change_weights_as_documented(init):
    model = zoo.create_model("mlp", input_shape=(200,), width=200, depth=1, init=init,
                             init_std=0.05)
    w = model.layers[0].weight.detach()
    expected_std = {"default": 1 / (3 * 200) ** 0.5,      # U(-1/sqrt(fan_in), 1/sqrt(fan_in))
                    "xavier": 2 ** 0.5 * (2 / 400) ** 0.5,  # gain(relu) * sqrt(2/(in+out))
                    "he": (2 / 200) ** 0.5,
                    "small-normal": 0.05}[init]
    assert float(w.std()) == pytest.approx(expected_std, rel=0.05)
    if init != "default":
        assert float(model.layers[0].bias.detach().abs().max()) == 0.0


def test_bad_init_std_is_explained():
    with pytest.raises(InvalidInputError, match="'init_std' parameter of mlp must be a finite "
                                                "number > 0.0. Got -1.0"):
        zoo.create_model("mlp", init="small-normal", init_std=-1.0)


# ---------------------------------------------------------------- rnn
@pytest.mark.parametrize("cell,activation,bidirectional,layers,pooling", [
    ("gru", "tanh", False, 1, "last"),
    ("lstm", "tanh", True, 2, "last"),
    ("rnn", "tanh", False, 1, "mean"),
    ("rnn", "relu", True, 1, "last"),
    ("lstm", "tanh", False, 1, "mean"),
])
def test_rnn_padding_never_changes_a_prediction(cell, activation, bidirectional, layers, pooling):
    model = zoo.create_model("rnn", cell=cell, activation=activation, hidden=8,
                             bidirectional=bidirectional, layers=layers, pooling=pooling).eval()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 6, 12, generator=g)
    x[1, 4:] = 0                                   # a shorter sequence inside the batch
    x[2, 2] = 0                                    # an inner zero frame is not padding
    padded = torch.cat([x, torch.zeros(3, 5, 12)], dim=1)
    with torch.no_grad():
        short, long = model(x), model(padded)
        alone = model(x[1:2, :4])
    torch.testing.assert_close(short, long, atol=1e-6, rtol=0)
    torch.testing.assert_close(alone, short[1:2], atol=1e-6, rtol=0)
    assert type(model.get_submodule(model.card.layers["recurrent"])).__name__ == cell.upper()


_CONFIGS = [("gru", False, 1, "last"), ("gru", True, 2, "mean"), ("lstm", True, 1, "last"),
            ("rnn", False, 2, "mean")]


@pytest.mark.parametrize("cell,bidirectional,layers,pooling", _CONFIGS)
def test_rnn_unpacked_path_equals_the_packed_one_on_equal_lengths(cell, bidirectional, layers,
                                                                   pooling):
    # Arrange: a batch without padding (every length is T)
    from zoo.models.rnn import _encode
    model = zoo.create_model("rnn", cell=cell, hidden=8, bidirectional=bidirectional,
                             layers=layers, pooling=pooling).eval()
    x = torch.randn(4, 7, 12, generator=torch.Generator().manual_seed(5), requires_grad=True)
    lengths = torch.full((4,), 7)
    # Act
    outs, grads = [], []
    for packed in (True, False):
        out = _encode(model.rnn, x, lengths, pooling, packed=packed)
        (grad,) = torch.autograd.grad(out.square().sum(), x)
        outs.append(out)
        grads.append(grad)
    # Assert: same summary and same input gradient (what attributions read)
    torch.testing.assert_close(outs[0], outs[1], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("cell,bidirectional,layers,pooling", _CONFIGS)
def test_rnn_mixed_lengths_give_each_row_its_unpacked_result(cell, bidirectional, layers,
                                                             pooling):
    # Arrange: rows of lengths 7, 3 and 5 in one padded batch (packed), each row alone (unpacked)
    model = zoo.create_model("rnn", cell=cell, hidden=8, bidirectional=bidirectional,
                             layers=layers, pooling=pooling).eval()
    x = torch.randn(3, 7, 12, generator=torch.Generator().manual_seed(6))
    lengths = [7, 3, 5]
    for row, n in enumerate(lengths):
        x[row, n:] = 0
    # Act
    with torch.no_grad():
        batch = model(x)
        alone = torch.cat([model(x[row:row + 1, :n]) for row, n in enumerate(lengths)])
    # Assert
    torch.testing.assert_close(batch, alone, atol=1e-6, rtol=1e-5)


def test_rnn_frame_stacking_keeps_padding_out_of_the_prediction():
    # Arrange: 3 frames per step; rows of lengths 7 and 4 (neither a multiple of 3)
    from zoo.models.rnn import stack_frames
    model = zoo.create_model("rnn", hidden=8, frame_stack=3, pooling="mean").eval()
    x = torch.randn(2, 7, 12, generator=torch.Generator().manual_seed(7))
    x[1, 4:] = 0
    padded = torch.cat([x, torch.zeros(2, 5, 12)], dim=1)
    # Act
    with torch.no_grad():
        short, long, alone = model(x), model(padded), model(x[1:2, :4])
    # Assert
    torch.testing.assert_close(short, long, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(short[1:2], alone, atol=1e-6, rtol=1e-5)
    assert stack_frames(x, 3).shape == (2, 3, 36) and model.rnn.input_size == 36
    assert model.card.kwargs["frame_stack"] == 3


def test_rnn_all_padding_row_is_finite():
    model = zoo.create_model("rnn", hidden=8).eval()
    assert torch.isfinite(model(torch.zeros(2, 4, 12))).all()


def test_rnn_gradients_reach_the_input_in_eval_mode():
    model = zoo.create_model("rnn", hidden=8).eval()
    x = torch.randn(2, 5, 12, requires_grad=True)
    model(x)[:, 0].sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_rnn_option_errors():
    with pytest.raises(InvalidInputError, match="'cell' parameter of rnn must be one of 'gru', "
                                                "'lstm', 'rnn'. Got 'gur' instead"):
        zoo.create_model("rnn", cell="gur")
    with pytest.raises(InvalidInputError, match="only applies to cell='rnn'"):
        zoo.create_model("rnn", cell="gru", activation="relu")
    with pytest.raises(InvalidInputError, match="must be one of 'tanh', 'relu'"):
        zoo.create_model("rnn", cell="rnn", activation="sigmoid")
    with pytest.raises(DataMismatchError, match=r"\[B, \*, 12\]"):
        zoo.create_model("rnn")(torch.randn(2, 5, 3))


# ---------------------------------------------------------------- transformer
def test_transformer_padding_never_changes_a_prediction():
    model = build("transformer", input_shape=(8,), layers=2).eval()
    ids = torch.tensor([[5, 6, 7, 0, 0, 0, 0, 0], [9, 10, 11, 12, 13, 14, 15, 16]])
    longer = torch.cat([ids, torch.zeros(2, 5, dtype=torch.long)], dim=1)  # past max_len
    with torch.no_grad():
        a, b, alone = model(ids), model(longer), model(ids[:1, :3])
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    torch.testing.assert_close(alone, a[:1], atol=1e-6, rtol=0)
    with_grad = model(longer).detach()          # the slow (autograd) path agrees too
    torch.testing.assert_close(with_grad, a, atol=1e-6, rtol=0)


@pytest.mark.parametrize("norm_first,activation", [(False, "relu"), (True, "gelu")])
def test_transformer_attention_maps(norm_first, activation):
    model = build("transformer", layers=2, norm_first=norm_first, activation=activation).train()
    ids = torch.tensor([[5, 6, 7, 0, 0], [0, 0, 0, 0, 0]])
    maps = model.attention_maps(ids)
    assert maps.shape == (2, 2, 2, 5, 5)
    assert model.training                                # mode restored
    torch.testing.assert_close(maps[:, 0].sum(-1), torch.ones(2, 2, 5))
    assert float(maps[:, 0, :, :, 3:].abs().max()) == 0.0   # padding keys get no attention
    assert torch.isfinite(maps).all()                     # all-padding row guarded
    assert torch.isfinite(model.eval()(ids)).all()


def test_transformer_option_errors():
    model = build("transformer", input_shape=(4,))
    with pytest.raises(DataMismatchError, match="at most max_len=4 tokens"):
        model(torch.tensor([[5, 6, 7, 8, 9]]))
    with pytest.raises(DataMismatchError, match=r"token ids in 0..299 \(vocab_size=300\)"):
        model(torch.tensor([[5, 300]]))
    with pytest.raises(DataMismatchError, match="expects int64 input"):
        model(torch.rand(1, 4))
    with pytest.raises(InvalidInputError, match="'heads' parameter of transformer must divide"):
        build("transformer", heads=3)
    with pytest.raises(InvalidInputError, match="must be one of 'relu', 'gelu'"):
        build("transformer", activation="tanh")


# ---------------------------------------------------------------- mlp
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "gelu", "leaky_relu"])
def test_mlp_layers_ordered_input_to_output(activation):
    model = zoo.create_model("mlp", depth=3, width=16, activation=activation, batch_norm=True,
                             dropout=0.1)
    linear = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    assert linear == ["layers.0", "layers.1", "layers.2", "layers.3"]
    assert model.layers[0].in_features == 64 and model.layers[3].out_features == 10
    assert all(activation.replace("_", "") in type(a).__name__.lower() for a in model.acts)


def test_mlp_modality_and_tabular_input():
    assert zoo.create_model("mlp").card.modality is Modality.IMAGE
    tab = zoo.create_model("mlp", input_shape=(5,), num_classes=2, depth=0)
    assert tab.card.modality is Modality.TABULAR and len(tab.layers) == 1
    assert zoo.create_model("mlp", modality="tabular").card.modality is Modality.TABULAR
    with pytest.raises(InvalidInputError, match="'modality' parameter of mlp must be one of "
                                                "'image', 'tabular'"):
        zoo.create_model("mlp", modality="text")


def test_mlp_negative_bias_init_kills_relu_units():
    model = zoo.create_model("mlp", input_shape=(20,), depth=2, width=64, init="he",
                             bias_init=-3.0).eval()
    assert float(model.layers[0].bias.detach().mean()) == -3.0
    assert float(model.layers[2].bias.detach().abs().max()) < 1.0   # the head keeps its own bias
    x = torch.randn(256, 20) * 0.5
    active = model.acts[0](model.layers[0](x)) > 0
    assert float(active.any(dim=0).float().mean()) < 0.5   # most units never fire


def test_deep_sigmoid_small_normal_gradients_vanish():
    model = zoo.create_model("mlp", depth=10, width=32, activation="sigmoid",
                             init="small-normal", init_std=0.05)
    x = torch.randn(32, 1, 8, 8)
    nn.functional.cross_entropy(model(x), torch.arange(32) % 10).backward()
    first, last = model.layers[0].weight.grad.norm(), model.layers[9].weight.grad.norm()
    assert float(first / last) < 1e-6


def test_models_work_with_captum_deeplift():
    from captum.attr import DeepLift

    model = zoo.create_model("mlp", depth=2, width=16, batch_norm=True).eval()
    x = torch.randn(3, 1, 8, 8)
    attr = DeepLift(model).attribute(x, target=1).detach()
    with torch.no_grad():
        delta = attr.flatten(1).sum(1) - (model(x)[:, 1] - model(torch.zeros_like(x))[:, 1])
    assert attr.shape == x.shape and float(delta.abs().max()) < 1e-4


def test_input_shape_errors_name_the_layout():
    with pytest.raises(InvalidInputError, match=r"'input_shape' parameter of cnn must be a list "
                                                r"or tuple of 3 sizes \(C, H, W\). Got \(28, 28\)"):
        zoo.create_model("cnn", input_shape=(28, 28))
    with pytest.raises(InvalidInputError, match="'input_shape' parameter of mlp must be a "
                                                "non-empty list or tuple"):
        zoo.create_model("mlp", input_shape=64)
    with pytest.raises(InvalidTypeError, match=r"'input_shape\[0\]' parameter of mlp must be an "
                                               r"int >= 1. Got None"):
        zoo.create_model("mlp", input_shape=(None, 4))
    assert zoo.create_model("rnn", input_shape=[None, 3]).card.input_shape == (None, 3)


def test_transformer_embeddings_start_small_and_padding_row_zero():
    model = build("transformer", embed_std=0.02)
    w = model.embed.weight.detach()
    assert float(w[0].abs().max()) == 0.0
    assert float(w[1:].std()) == pytest.approx(0.02, rel=0.1)
    assert float(model.pos.weight.detach().std()) == pytest.approx(0.02, rel=0.2)
    with pytest.raises(InvalidInputError, match="'embed_std' parameter of transformer must be a "
                                                "finite number > 0.0. Got 0"):
        build("transformer", embed_std=0)
