"""explain.integrations.lightning.MonitorCallback on a tiny LightningModule."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

pl = pytest.importorskip("lightning.pytorch", reason="needs lightning (pip install 'deepscope[lightning]')")

from explain.findings import Finding  # noqa: E402
from explain.integrations.lightning import HISTORY_FILE, MonitorCallback  # noqa: E402


class Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, x):
        return self.net(x)

    def _shared(self, batch, prefix):
        x, y = batch
        logits = self(x)
        loss = nn.functional.cross_entropy(logits, y)
        acc = (logits.argmax(1) == y).float().mean()
        self.log(f"{prefix}_loss", loss, on_step=False, on_epoch=True)
        self.log(f"{prefix}_acc", acc, on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._shared(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._shared(batch, "val")

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loaders():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    ds = torch.utils.data.TensorDataset(x, y)
    return (torch.utils.data.DataLoader(ds, batch_size=8),
            torch.utils.data.DataLoader(ds, batch_size=32))


def _fit(tmp_path, cb, **trainer_kw):
    torch.manual_seed(0)
    module = Tiny()
    trainer = pl.Trainer(max_epochs=2, callbacks=[cb], default_root_dir=tmp_path,
                         logger=pl.loggers.CSVLogger(tmp_path), enable_progress_bar=False,
                         enable_checkpointing=False, enable_model_summary=False,
                         num_sanity_val_steps=0, accelerator="cpu", **trainer_kw)
    train, val = _loaders()
    trainer.fit(module, train, val)
    return module, trainer


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_lightning_callback_records_logs_saves_and_leaves_no_hooks(tmp_path, capsys):
    # Arrange
    cb = MonitorCallback(every=1)
    # Act: 8 batches per epoch, accumulate 2 -> 4 optimizer steps per epoch
    module, trainer = _fit(tmp_path, cb, accumulate_grad_batches=2)
    # Assert
    h = cb.history
    assert h.meta["total_steps"] == 8 == trainer.global_step
    assert h.steps == list(range(8))
    assert h.num_epochs == 2
    for column in ("train_loss", "val_loss", "train_acc", "val_acc"):
        assert all(isinstance(v, float) for v in h.epochs[column]), column
    assert set(h.layers) == {"net.0", "net.2"}
    found = cb.findings()
    assert found and all(isinstance(f, Finding) for f in found)
    saved = json.loads((tmp_path / "lightning_logs" / "version_0" / HISTORY_FILE).read_text())
    assert saved["meta"]["total_steps"] == 8
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in module.modules())
    out = capsys.readouterr().out
    assert f"deepscope: {len(found)} findings (history saved to " in out


def test_lightning_callback_removes_hooks_when_fit_raises(tmp_path):
    # Arrange
    class Boom(Tiny):
        def training_step(self, batch, batch_idx):
            if batch_idx == 2:
                raise RuntimeError("boom")
            return super().training_step(batch, batch_idx)

    cb = MonitorCallback(every=1, verbose=False)
    module = Boom()
    trainer = pl.Trainer(max_epochs=1, callbacks=[cb], logger=False, enable_progress_bar=False,
                         enable_checkpointing=False, enable_model_summary=False,
                         default_root_dir=tmp_path, accelerator="cpu")
    # Act
    with pytest.raises(RuntimeError, match="boom"):
        trainer.fit(module, _loaders()[0])
    # Assert
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in module.modules())
    assert cb.history.steps == [0, 1]
