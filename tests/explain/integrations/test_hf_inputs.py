"""explain.attribute on HF-style inputs: a BatchEncoding or any mapping with input_ids."""

from __future__ import annotations

import pytest
import torch

import explain
from explain.attribution.hf_inputs import baseline_ids, merge_word_pieces, token_batch, word_scores
from explain.errors import InvalidInputError

tf = pytest.importorskip("transformers", reason="needs transformers (pip install 'deepscope[transformers]')")

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "great", "dull", "film", "play",
         "##ing", "well", "not"]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return tf.BertTokenizerFast(vocab={w: i for i, w in enumerate(WORDS)})


@pytest.fixture(scope="module")
def bert():
    tf.utils.logging.set_verbosity_error()
    torch.manual_seed(0)
    config = tf.BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1,
                           num_attention_heads=2, intermediate_size=32, num_labels=2,
                           max_position_embeddings=16, hidden_dropout_prob=0.0)
    return tf.BertForSequenceClassification(config).eval()


@pytest.fixture
def enc(tok):
    return tok(["a great film playing well", "dull"], padding=True, return_tensors="pt")


class Wrapper(torch.nn.Module):
    """What a captum user writes by hand today."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids, mask, types):
        return self.model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits


def test_a_batch_encoding_gives_one_score_per_token_and_exact_zeros_at_padding(bert, enc):
    # Act
    a = explain.attribute(bert, enc, n_steps=16)
    # Assert
    assert a.values.shape == enc["input_ids"].shape == (2, 8)
    pad = enc["attention_mask"] == 0
    assert int(pad.sum()) == 5 and bool((a.values[pad] == 0).all())
    assert bool(torch.isfinite(a.values).all()) and bool((a.values[~pad] != 0).any())
    torch.testing.assert_close(a.inputs, enc["input_ids"])


def test_the_batch_encoding_matches_the_hand_written_wrapper(bert, enc):
    # Arrange
    a = explain.attribute(bert, enc, n_steps=16)
    # Act
    b = explain.attribute(Wrapper(bert), enc["input_ids"], baselines=a.baselines, n_steps=16,
                          additional_forward_args=(enc["attention_mask"], enc["token_type_ids"]))
    # Assert
    torch.testing.assert_close(a.values, b.values)
    torch.testing.assert_close(a.target, b.target)


class KeywordOnly(torch.nn.Module):
    """A keyword-only model without a config: no source of special-token ids."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(len(WORDS), 4)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, *, input_ids, attention_mask):
        w = attention_mask.unsqueeze(-1).float()
        return {"logits": self.fc((self.emb(input_ids) * w).sum(1))}


def test_a_plain_dict_works_and_says_when_special_tokens_are_unknown():
    # Arrange
    ids = torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0]])
    mask = (ids != 0).long()
    # Act
    a = explain.attribute(KeywordOnly().eval(), {"input_ids": ids, "attention_mask": mask},
                          n_steps=8)
    # Assert: without special tokens only padding keeps its id in the baseline
    assert a.values.shape == (2, 4) and float(a.values[1, 3]) == 0.0
    assert a.baselines.tolist() == [[0, 0, 0, 0], [0, 0, 0, 0]]
    assert a.warnings == ("special tokens unknown (no tokenizer=, special_tokens_mask or model "
                          "config ids): only padding is held fixed in the baseline",)


def test_a_plain_dict_on_a_hf_model_uses_the_config_ids(bert):
    # Arrange: BERT's config knows only pad_token_id (0)
    ids = torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0]])
    # Act
    a = explain.attribute(bert, {"input_ids": ids}, method="saliency")
    # Assert
    assert a.values.shape == (2, 4) and float(a.values[1, 3]) == 0.0 and a.warnings == ()


def test_baselines_hold_special_tokens_and_padding_fixed(bert, tok, enc):
    # Act
    default = explain.attribute(bert, enc, n_steps=8).baselines
    masked = explain.attribute(bert, enc, n_steps=8, tokenizer=tok, baseline_token="[MASK]")
    # Assert: [CLS] a great film play ##ing well [SEP] -> [CLS] [PAD] x 6 [SEP]
    assert default.tolist() == [[2, 0, 0, 0, 0, 0, 0, 3], [2, 0, 3, 0, 0, 0, 0, 0]]
    ids = enc["input_ids"]
    special = (ids == 2) | (ids == 3) | (ids == 0)
    assert bool((default[special] == ids[special]).all())
    assert bool((masked.baselines[~special] == 4).all())
    assert bool((masked.baselines[special] == ids[special]).all())


def test_token_batch_passes_other_keys_and_drops_tokenizer_only_ones(tok):
    # Arrange
    enc = tok(["a film"], return_tensors="pt", return_special_tokens_mask=True)
    enc["labels"] = torch.tensor([1])
    enc["extra"] = torch.ones(1, 4)
    # Act
    batch = token_batch(enc, tokenizer=tok)
    # Assert
    assert batch.names == ("token_type_ids", "attention_mask", "extra")
    assert batch.special.tolist() == [[True, False, False, True]]
    assert baseline_ids(batch, 0).tolist() == [[2, 0, 0, 3]]


def test_bad_mapping_inputs_raise_clear_errors(bert):
    # Act / Assert
    with pytest.raises(InvalidInputError, match=r"must have the shape of input_ids \[1, 3\]"):
        explain.attribute(bert, {"input_ids": torch.tensor([[2, 5, 3]]),
                                 "attention_mask": torch.ones(1, 4)})
    with pytest.raises(InvalidInputError, match="needs tokenizer= to become an id"):
        explain.attribute(bert, {"input_ids": torch.tensor([[2, 5, 3]])}, baseline_token="[MASK]")
    with pytest.raises(InvalidInputError, match="applies to mapping inputs"):
        explain.attribute(torch.nn.Linear(2, 2), torch.zeros(1, 2), baseline_token=0)


@pytest.mark.parametrize("method", ["integrated_gradients", "saliency", "occlusion", "deeplift",
                                    "feature_ablation", "gradient_shap"])
def test_every_common_method_runs_on_hf_inputs(bert, enc, method):
    # Act
    a = explain.attribute(bert, enc, method=method)
    # Assert
    assert a.values.shape == (2, 8) and bool(torch.isfinite(a.values).all())
    assert bool((a.values[enc["attention_mask"] == 0] == 0).all())
    if method == "deeplift":
        assert a.method == "integrated_gradients" and a.warnings[0].startswith(
            "deeplift -> integrated_gradients: functional non-linearities")


def test_word_pieces_are_merged_with_summed_scores(bert, tok, enc):
    # Arrange
    a = explain.attribute(bert, enc, n_steps=8)
    # Act
    ws = word_scores(a, tok, 0)
    short = word_scores(a, tok, 1)
    # Assert
    assert ws.words == ("[CLS]", "a", "great", "film", "playing", "well", "[SEP]")
    assert ws.positions[4] == (4, 5)
    assert ws.scores[4] == pytest.approx(float(a.values[0, 4] + a.values[0, 5]))
    assert ws.note == "word pieces merged into words; their scores summed"
    assert short.words == ("[CLS]", "dull", "[SEP]") and not short.merged and short.note == ""


def test_merge_word_pieces_handles_sentencepiece_and_byte_level():
    # Act
    sp = merge_word_pieces(["<s>", "\u2581play", "ing", "\u2581well", "</s>"], [0, 1, 2, 3, 0])
    bl = merge_word_pieces(["\u0120play", "ing", "\u0120well"], [1, 2, 3], mask=[1, 1, 0])
    # Assert
    assert (sp.words, sp.scores) == (("<s>", "playing", "well", "</s>"), (0.0, 3.0, 3.0, 0.0))
    assert (bl.words, bl.scores) == (("playing",), (3.0,))
