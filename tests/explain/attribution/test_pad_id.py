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


def test_the_attribution_carries_its_pad_id_only_for_token_inputs(roberta):
    # Arrange
    mlp = torch.nn.Sequential(torch.nn.Linear(4, 2))
    # Act
    tokens = explain.attribute(roberta, IDS, target=1, n_steps=8)
    floats = explain.attribute(mlp, torch.randn(3, 4), target=0, n_steps=8)
    # Assert
    assert tokens.pad_id == PAD
    assert floats.pad_id is None


def test_trust_metrics_treat_the_pad_id_as_padding_and_removed_tokens_become_it(roberta):
    # Arrange
    from explain import Modality
    from explain.quality._common import default_baseline, feature_units, real_mask
    from explain.quality.evaluation import _context

    attr = explain.attribute(roberta, IDS, target=1, n_steps=8)
    # Act
    mask = real_mask(IDS, Modality.TEXT, PAD)
    base = default_baseline(IDS, Modality.TEXT, PAD)
    unit, _ = feature_units(IDS, Modality.TEXT, pad_id=PAD)
    context = _context(roberta, None, attr, n_samples=2, modality=None, explain_fn=None,
                       attribute_options=None, seed=0, batch_size=8, options={}, thresholds={})
    # Assert: <s> (id 0) is a real token, <pad> (id 1) is not
    assert torch.equal(mask, IDS != PAD)
    assert torch.equal(base, torch.full_like(IDS, PAD))
    assert torch.equal(unit < 0, IDS == PAD)
    assert context.pad_id == PAD


def test_the_report_hides_padding_by_the_sections_pad_id():
    # Arrange
    from explain import Modality
    from explain.auditing.sections.explanations import (
        ExplainedSample,
        ExplanationsSection,
        MethodResult,
    )
    from explain.figures.report import token_blocks

    names = ByteBPE().convert_ids_to_tokens(IDS[0].tolist())
    sample = ExplainedSample(index=0, pred=1, confidence=0.9, input=IDS[0], tokens=tuple(names))
    values = torch.tensor([[0.1, 0.2, 0.3, 0.4, 0.5, 0.0, 0.0]])
    sec = ExplanationsSection(modality=Modality.TEXT, class_names=("neg", "pos"),
                              samples=(sample,), methods=(MethodResult("saliency",
                                                                      values=values),),
                              pad_id=PAD)
    # Act
    (label, block), = token_blocks(sec)
    again = ExplanationsSection.from_dict(sec.to_dict())
    # Assert
    assert "&lt;s&gt;" in block and "&lt;pad&gt;" not in block
    assert again.pad_id == PAD
