"""explain.integrations.transformers.MonitorCallback on a tiny BERT in the HF Trainer."""

from __future__ import annotations

import json

import pytest
import torch

tf = pytest.importorskip("transformers", reason="needs transformers (pip install 'deepscope[transformers]')")
pytest.importorskip("accelerate", reason="the HF Trainer needs accelerate")

from explain.findings import Finding  # noqa: E402
from explain.integrations.transformers import HISTORY_FILE, MonitorCallback  # noqa: E402


class _Rows(torch.utils.data.Dataset):
    def __init__(self, n: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(5, 50, (n, 8), generator=g)
        self.labels = (self.ids[:, 1] > 27).long()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "attention_mask": torch.ones(8, dtype=torch.long),
                "labels": self.labels[i]}


def _accuracy(pred):
    return {"accuracy": float((pred.predictions.argmax(-1) == pred.label_ids).mean())}


def test_hf_callback_records_one_step_per_optimizer_step_and_epoch_metrics(tmp_path, capsys):
    # Arrange
    tf.utils.logging.set_verbosity_error()
    torch.manual_seed(0)
    config = tf.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                           num_attention_heads=2, intermediate_size=32, num_labels=2,
                           max_position_embeddings=16)
    model = tf.BertForSequenceClassification(config)
    args = tf.TrainingArguments(
        output_dir=str(tmp_path), num_train_epochs=2, per_device_train_batch_size=4,
        gradient_accumulation_steps=2, eval_strategy="epoch", logging_strategy="no",
        save_strategy="no", report_to=[], disable_tqdm=True, use_cpu=True, seed=0)
    cb = MonitorCallback(every=1)
    trainer = tf.Trainer(model=model, args=args, train_dataset=_Rows(32),
                         eval_dataset=_Rows(16), compute_metrics=_accuracy, callbacks=[cb])
    # Act: 32 rows / (4 x 2 accumulated) -> 4 optimizer steps per epoch
    trainer.train()
    # Assert
    h = cb.history
    assert h.meta["total_steps"] == 8 == trainer.state.global_step
    assert h.steps == list(range(8))
    assert all(isinstance(v, float) for v in h.step_loss)
    assert h.num_epochs == 2
    for column in ("train_loss", "val_loss", "val_acc"):
        assert all(isinstance(v, float) for v in h.epochs[column]), column
    assert h.layers
    found = cb.findings()
    assert found and all(isinstance(f, Finding) for f in found)
    assert json.loads((tmp_path / HISTORY_FILE).read_text())["meta"]["total_steps"] == 8
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert f"deepscope: {len(found)} findings" in capsys.readouterr().out
