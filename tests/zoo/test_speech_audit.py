"""Run.audit of a spoken-digits run: every explained sample carries its own test clip, which
the HTML report embeds."""

from __future__ import annotations

import shutil

import pytest

import zoo
from explain.auditing.sections import ExplanationsSection

pytest.importorskip("librosa")
pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="espeak-ng and sox are not installed (scripts/setup.sh installs them)")


def test_run_audit_keeps_the_test_clip_of_every_explained_sample(tmp_path):
    # Arrange: cnn-speech on 6 voices, 1 epoch
    run = zoo.train(preset="cnn-speech", progress=False, device="cpu", epochs=1, batch_size=32,
                    dataset_options={"cache_dir": tmp_path, "voices": 6, "renditions": 1,
                                     "progress": False})
    # Act
    report = run.audit(samples=3, checks=["non-finite"], trust_metrics=("faithfulness",),
                       train_data=None)
    # Assert
    sec = report.section(ExplanationsSection)
    assert [m.method for m in sec.methods] == ["integrated_gradients", "grad_cam"]
    assert len(sec.samples) == 3
    assert [s.audio for s in sec.samples] == [run.dataset.wav_bytes("test", s.index)
                                              for s in sec.samples]
    assert all(tuple(s.input.shape) == (1, 40, 101) for s in sec.samples)
    assert report.render("html").count('src="data:audio/wav;base64,') == 3
