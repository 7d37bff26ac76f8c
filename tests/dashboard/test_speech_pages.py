"""The dashboard on a reduced spoken-digits run (cnn-speech, 6 voices, 1 epoch): the
predictions and explanations pages play the clip (an audio element with a WAV source) next to
the attribution over its spectrogram."""

from __future__ import annotations

import shutil

import pytest

from tests.dashboard.helpers import APP, open_page, plotly_specs

pytestmark = [
    pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                       reason="espeak-ng and sox are not installed (scripts/setup.sh)"),
]
pytest.importorskip("librosa")

RUN = "tiny-speech"


@pytest.fixture(scope="module")
def speech_runs(tmp_path_factory):
    import zoo

    root = tmp_path_factory.mktemp("speech")
    run = zoo.train(preset="cnn-speech", out=root / "runs" / RUN, progress=False, device="cpu",
                    epochs=1, batch_size=32, monitor_every=1,
                    dataset_options={"cache_dir": str(root / "cache"), "voices": 6,
                                     "renditions": 1, "progress": False})
    return root / "runs", run


def _audio(at) -> list:
    return [el.proto for el in at.get("audio")]


def _source(clip: bytes) -> str:
    """The media URL st.audio gives a WAV (its file id is a hash of the bytes and MIME type)."""
    from streamlit.runtime.memory_media_file_storage import _calculate_file_id

    return f"/media/{_calculate_file_id(clip, 'audio/wav')}.wav"


def test_the_explanations_page_plays_the_clip_next_to_its_explanation(speech_runs, monkeypatch):
    from streamlit.testing.v1 import AppTest
    # Arrange
    runs, run = speech_runs
    monkeypatch.setenv("DEEPSCOPE_RUNS", str(runs))
    at = AppTest.from_file(str(APP), default_timeout=300).run()
    assert not at.exception, [e.value for e in at.exception]
    # Act
    open_page(at, "explanations")
    at.number_input(key="exp_index").set_value(3).run()
    # Assert: one player of sample 3's WAV, one audio figure per method
    assert not at.exception, [e.value for e in at.exception]
    players = _audio(at)
    assert len(players) == 1
    assert players[0].url.endswith(_source(run.dataset.wav_bytes("test", 3)))
    specs = plotly_specs(at)
    assert {"attr_integrated_gradients", "attr_saliency"} <= set(specs)
    import json
    names = [t.get("name") for t in json.loads(specs["attr_saliency"])["data"]]
    assert names == ["waveform", "spectrogram", "attribution", "sum over mel bands"]


def test_the_predictions_page_plays_every_shown_clip(speech_runs, monkeypatch):
    from streamlit.testing.v1 import AppTest
    # Arrange
    runs, run = speech_runs
    monkeypatch.setenv("DEEPSCOPE_RUNS", str(runs))
    at = AppTest.from_file(str(APP), default_timeout=300).run()
    # Act
    open_page(at, "predictions")
    # Assert: the 10 test clips (one voice), each with its player
    assert len(run.dataset.test) == 10
    shown = [int(c.value.split(" ")[0][1:]) for c in at.caption if c.value.startswith("#")]
    assert len(shown) == 10
    assert [p.url.rsplit("/media", 1)[1] for p in _audio(at)] == [
        _source(run.dataset.wav_bytes("test", i)).removeprefix("/media") for i in shown]
    assert len(at.get("image")) == 10          # each clip's spectrogram as a thumbnail
