"""explain.audit and explain.evaluate the way Hugging Face users hold models and data: model
outputs (ModelOutput / mapping / tuple), mapping batches with labels, datasets.Dataset,
tokenizer= for readable word pieces."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import explain
from explain.auditing._data import gather, words_of
from explain.auditing.sections import ExplanationsSection, PerformanceSection
from explain.errors import DataMismatchError, InvalidInputError
from explain.figures.report import token_blocks

tf = pytest.importorskip("transformers",
                         reason="needs transformers (pip install 'deepscope[transformers]')")

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "great", "dull", "film", "play",
         "##ing", "well", "not", "boring"]
TEXTS = ["a great film playing well", "dull", "not boring", "a dull film", "great",
         "playing a great film", "boring boring", "not a great film"]
LABELS = torch.tensor([1, 0, 1, 0, 1, 1, 0, 0])


@pytest.fixture(scope="module")
def tok():
    return tf.BertTokenizerFast(vocab={w: i for i, w in enumerate(WORDS)})


@pytest.fixture(scope="module")
def bert():
    tf.utils.logging.set_verbosity_error()
    torch.manual_seed(0)
    config = tf.BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1,
                           num_attention_heads=2, intermediate_size=32, num_labels=2,
                           max_position_embeddings=16, hidden_dropout_prob=0.0)
    return tf.BertForSequenceClassification(config).eval()


def batches(tok, size=3):
    """Tokenizer batches padded per batch (so their lengths differ), labels under 'labels'."""
    out = []
    for i in range(0, len(TEXTS), size):
        enc = tok(TEXTS[i:i + size], padding=True, return_tensors="pt")
        enc["labels"] = LABELS[i:i + size]
        out.append(enc)
    return out


def reference_logits(bert, tok):
    """The logits of the model called the HF way on every text (one padded batch)."""
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        return bert(**enc).logits


# ----------------------------------------------------------------------------- model outputs
class Linear(torch.nn.Module):
    def __init__(self, form):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)
        self.form = form

    def forward(self, x):
        z = self.fc(x)
        if self.form == "mapping":
            return {"logits": z, "hidden": x}
        if self.form == "model_output":
            return tf.modeling_outputs.SequenceClassifierOutput(logits=z)
        if self.form == "tuple":
            return (z, x)
        return z


@pytest.mark.parametrize("form", ["mapping", "model_output", "tuple"])
def test_audit_and_evaluate_read_the_logits_of_every_output_form(form):
    # Arrange: the same weights returning a tensor (reference) and the form under test
    torch.manual_seed(0)
    plain, other = Linear("tensor"), Linear(form)
    other.load_state_dict(plain.state_dict())
    x, y = torch.randn(24, 4), torch.randint(0, 3, (24,))
    attr = explain.attribute(plain, x[:4], target=y[:4])
    # Act
    got = [explain.audit(m, (x, y), samples=2, checks=["non-finite"],
                         trust_metrics=("completeness",)) for m in (plain, other)]
    quality = [explain.evaluate(m, x[:4], attr, metrics=("completeness", "faithfulness"))
               for m in (plain, other)]
    # Assert
    perf = [r.section(PerformanceSection) for r in got]
    assert perf[0].accuracy == perf[1].accuracy and perf[1].n == 24
    assert [m.error for m in got[1].section(ExplanationsSection).methods] == [None, None]
    assert quality[0].medians == quality[1].medians
    assert got[1].title == "Audit of Linear"


# ----------------------------------------------------------------------------- mapping data
def test_a_dataloader_of_tokenizer_batches_is_padded_and_called_with_keywords(bert, tok):
    # Arrange
    loader = DataLoader(batches(tok), batch_size=None)
    assert [b["input_ids"].shape[1] for b in loader] == [8, 7, 6]
    # Act
    data = gather(loader, tokenizer=tok, model=bert)
    net = data.model_for(bert)
    with torch.no_grad():
        logits = net(data.inputs)
    # Assert: one ids tensor padded with [PAD] = 0, labels kept, the same logits as HF's call
    assert data.inputs.shape == (8, 8) and data.inputs.dtype == torch.long
    assert torch.equal(data.labels, LABELS)
    assert data.plan.keywords == ("token_type_ids", "attention_mask") and data.plan.pad_id == 0
    torch.testing.assert_close(logits, reference_logits(bert, tok), atol=1e-5, rtol=1e-5)
    assert [n for n, _ in net.named_modules()] == [n for n, _ in bert.named_modules()]


def test_a_dataset_of_mapping_rows_of_different_lengths_is_read(bert, tok):
    # Arrange: a torch Dataset yielding one row per item, 'label' (singular) as datasets do
    class Rows(Dataset):
        def __len__(self):
            return len(TEXTS)

        def __getitem__(self, i):
            enc = tok(TEXTS[i], return_tensors="pt")
            return {**{k: v[0] for k, v in enc.items()}, "label": LABELS[i], "idx": i}

    # Act
    data = gather(Rows(), tokenizer=tok, model=bert)
    # Assert
    assert data.inputs.shape == (8, 8) and torch.equal(data.labels, LABELS)
    with torch.no_grad():
        torch.testing.assert_close(data.model_for(bert)(data.inputs), reference_logits(bert, tok),
                                   atol=1e-5, rtol=1e-5)


def test_a_datasets_dataset_in_torch_format_is_audited(bert, tok):
    datasets = pytest.importorskip("datasets", reason="needs the datasets package")
    # Arrange
    enc = tok(TEXTS, padding="max_length", max_length=10)
    ds = datasets.Dataset.from_dict({**enc, "label": LABELS.tolist(), "text": TEXTS})
    ds.set_format("torch", columns=["input_ids", "attention_mask", "token_type_ids", "label"])
    # Act
    report = explain.audit(bert, ds, samples=0, tokenizer=tok, checks=["non-finite"])
    # Assert
    perf = report.section(PerformanceSection)
    expected = float((reference_logits(bert, tok).argmax(1) == LABELS).float().mean())
    assert perf.n == 8 and perf.accuracy == pytest.approx(expected)


def test_a_mask_the_audit_cannot_rebuild_is_refused(bert, tok):
    # Arrange: an attention mask hiding a real token
    enc = tok(TEXTS[:2], padding=True, return_tensors="pt")
    enc["attention_mask"][0, 2] = 0
    enc["labels"] = LABELS[:2]
    # Act / Assert
    with pytest.raises(DataMismatchError) as info:
        gather([enc], tokenizer=tok)
    assert str(info.value) == (
        "audit 'data' key 'attention_mask' of samples [0] differs from the one the audit "
        "rebuilds from input_ids (ids != pad id 0). Pass tokenizer= so the pad and [SEP] ids "
        "are known, or pad with the tokenizer (padding=True).")


def test_sentence_pairs_rebuild_their_segments(bert, tok):
    # Arrange
    enc = tok(["a great film", "dull"], ["not boring", "a film playing well"], padding=True,
              return_tensors="pt")
    enc["labels"] = LABELS[:2]
    # Act
    data = gather([enc], tokenizer=tok)
    # Assert: token_type_ids are 1 in the second segment; the model sees the same inputs
    assert int(enc["token_type_ids"].sum()) > 0
    with torch.no_grad():
        torch.testing.assert_close(data.model_for(bert)(data.inputs), bert(
            **{k: v for k, v in enc.items() if k != "labels"}).logits)


def test_an_extra_per_token_input_is_refused_by_name(tok):
    enc = tok(TEXTS[:2], padding=True, return_tensors="pt")
    enc["position_ids"] = torch.zeros_like(enc["input_ids"])
    with pytest.raises(InvalidInputError, match="key 'position_ids' is a per-token model input"):
        gather([enc])


# ----------------------------------------------------------------------------- end to end
def test_audit_of_bert_from_a_dataloader_shows_merged_word_pieces(bert, tok):
    # Arrange
    loader = DataLoader(batches(tok), batch_size=None)
    # Act
    report = explain.audit(bert, loader, samples=8, tokenizer=tok, checks=["non-finite"],
                           trust_options={"sanity_checkpoints": 1})
    html = report.render("html")
    # Assert: performance equals the model's own; every explained sample has its word pieces
    perf = report.section(PerformanceSection)
    expected = float((reference_logits(bert, tok).argmax(1) == LABELS).float().mean())
    assert perf.n == 8 and perf.accuracy == pytest.approx(expected)
    sec = report.section(ExplanationsSection)
    assert sec.samples[0].tokens[0] == "[CLS]"
    assert {m.method: (m.error, tuple(m.values.shape)) for m in sec.methods} == {
        "integrated_gradients": (None, (8, 8)), "saliency": (None, (8, 8))}
    playing = [label for label, block in token_blocks(sec) if ">playing<" in block]
    assert playing and all(label.endswith(
        "word pieces merged into words; their scores summed") for label in playing)
    assert "##ing" not in "".join(b for _, b in token_blocks(sec))
    assert "word pieces merged into words; their scores summed" in html
    assert "[PAD]" not in html.split("Explained samples")[1].split("</table>")[0]
    for m in perf.mistakes:
        assert "[CLS]" not in m.text and "##" not in m.text


def test_words_of_merges_pieces_and_drops_special_tokens(tok):
    ids = tok(["a film playing well"], padding="max_length", max_length=9,
              return_tensors="pt")["input_ids"][0]
    assert words_of(ids, tok) == ["a", "film", "playing", "well"]
