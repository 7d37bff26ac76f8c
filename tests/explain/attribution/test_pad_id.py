"""The padding id comes from the tokenizer / model config, not an assumed 0: a RoBERTa-style
model (``<s>`` = 0, ``<pad>`` = 1), built here from a tiny config (no download)."""

from __future__ import annotations

import importlib.util

import pytest
import torch

import explain
from explain._core.tensors import decode_tokens, pad_id_of
from explain.attribution.hf_inputs import word_scores

pytestmark = pytest.mark.skipif(importlib.util.find_spec("transformers") is None,
                                reason="needs transformers (pip install 'deepscope[transformers]')")

BOS, PAD, EOS = 0, 1, 2
IDS = torch.tensor([[BOS, 5, 6, 7, EOS, PAD, PAD],
                    [BOS, 8, 9, EOS, PAD, PAD, PAD]])


class ByteBPE:
    """The part of a RoBERTa tokenizer the display needs (no vocabulary files)."""

    pad_token_id = PAD
    all_special_tokens = ["<s>", "</s>", "<pad>"]
    all_special_ids = [BOS, EOS, PAD]
    _names = {BOS: "<s>", PAD: "<pad>", EOS: "</s>", 5: "Ġun", 6: "watch", 7: "able",
              8: "Ġgreat", 9: "!"}

    def convert_ids_to_tokens(self, ids):
        return [self._names.get(int(i), f"t{int(i)}") for i in ids]


@pytest.fixture(scope="module")
def roberta():
    from transformers import RobertaConfig, RobertaForSequenceClassification

    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=32, hidden_size=16, num_hidden_layers=1,
                           num_attention_heads=2, intermediate_size=32,
                           max_position_embeddings=16, pad_token_id=PAD, bos_token_id=BOS,
                           eos_token_id=EOS, num_labels=2)
    return RobertaForSequenceClassification(config).eval()


def test_the_pad_id_is_read_from_the_tokenizer_then_the_model_config(roberta):
    # Act / Assert
    assert pad_id_of(ByteBPE(), None) == PAD
    assert pad_id_of(None, roberta) == PAD
    assert pad_id_of(None, torch.nn.Linear(2, 2)) == 0


def test_token_ids_padded_with_1_get_exactly_0_and_the_pad_baseline(roberta):
    # Act: no tokenizer: the pad id comes from roberta.config.pad_token_id
    attr = explain.attribute(roberta, IDS, target=1, n_steps=16)
    # Assert
    assert torch.equal(attr.values[IDS == PAD], torch.zeros(int((IDS == PAD).sum())))
    assert bool((attr.values[IDS != PAD] != 0).all())        # <s> (id 0) is a real position
    assert torch.equal(attr.baselines, torch.full_like(IDS, PAD))


def test_a_mapping_padded_with_1_gives_0_at_padding_and_keeps_bos(roberta):
    # Arrange
    enc = {"input_ids": IDS, "attention_mask": (IDS != PAD).long()}
    # Act
    attr = explain.attribute(roberta, enc, target=0, method="saliency", tokenizer=ByteBPE())
    # Assert
    assert attr.values.shape == IDS.shape
    assert torch.equal(attr.values[IDS == PAD], torch.zeros(int((IDS == PAD).sum())))
    assert bool((attr.values[:, 0] != 0).all())              # <s> is not taken for padding


def test_padding_is_hidden_from_the_displayed_words(roberta):
    # Arrange
    attr = explain.attribute(roberta, IDS, target=1, n_steps=16, tokenizer=ByteBPE())
    # Act
    words = word_scores(attr, ByteBPE(), index=0)
    tokens = decode_tokens(IDS[1], ByteBPE(), skip_padding=True, pad_id=PAD)
    # Assert
    assert list(words.words) == ["<s>", "unwatchable", "</s>"]
    assert words.scores[1] == pytest.approx(float(attr.values[0, 1:4].sum()))
    assert tokens == ["<s>", "Ġgreat", "!", "</s>"]
