"""The spoken-digits data set: synthesis, determinism, the cache, speaker-independent splits,
log-mel features, the typed error without espeak-ng/sox, and the speech models on top."""

from __future__ import annotations

import io
import shutil
import wave

import numpy as np
import pytest
import torch

import explain
import zoo
from explain.card import Modality
from explain.errors import InvalidInputError, MissingExtraError
from zoo.data import _speech
from zoo.data.spoken_digits import AudioBundle, log_mel, voice_split

pytest.importorskip("librosa")
needs_tools = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="espeak-ng and sox are not installed (scripts/setup.sh installs them)")

SMALL = {"voices": 6, "renditions": 1, "progress": False}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("deepscope-cache")


@pytest.fixture(scope="module")
def small(cache) -> AudioBundle:
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng and sox are not installed")
    return zoo.load_dataset("spoken-digits", cache_dir=cache, **SMALL)


# ----------------------------------------------------------------------------- synthesis
@needs_tools
def test_synthesis_gives_one_clip_per_word_and_voice(small):
    # Arrange / Act: 6 voices x 1 rendition x 10 words, synthesised by the fixture
    waves = torch.cat([small.waveforms[s] for s in ("train", "val", "test")])
    labels = torch.cat([getattr(small, s).tensors[1] for s in ("train", "val", "test")])
    voices = sum((list(small.voices[s]) for s in ("train", "val", "test")), [])
    # Assert
    assert waves.dtype == torch.int16 and tuple(waves.shape) == (60, 16000)
    assert small.sample_rate == 16000 and small.class_names == _speech.WORDS
    pairs = sorted(zip(voices, labels.tolist()))
    assert pairs == sorted((v.name, k) for v in _speech.all_voices()[:6] for k in range(10))
    rms = waves.double().pow(2).mean(1).sqrt() / 32768
    assert float(rms.min()) > 0.01                     # every clip holds a word, none is silent


@needs_tools
def test_augmentation_varies_noise_shift_and_gain(cache):
    corpus = _speech.load_corpus(_speech.all_voices()[:6], 1, 0, cache_dir=cache, workers=2,
                                 progress=False)
    clips = corpus.meta["clips"]
    assert len(clips) == 60
    assert {c["snr_db"] for c in clips} == set(_speech.SNR_DB)
    assert len({c["shift"] for c in clips}) > 50
    assert all(-6.0 <= c["gain_db"] <= 6.0 for c in clips)
    assert corpus.meta["synthesis_seconds"] > 0 and corpus.meta["espeak_ng"].startswith("eSpeak")


@needs_tools
def test_synthesis_is_deterministic_for_a_seed(tmp_path, small):
    voices = _speech.all_voices()[:3]
    a = _speech.load_corpus(voices, 1, 7, cache_dir=tmp_path / "a", workers=2, progress=False)
    b = _speech.load_corpus(voices, 1, 7, cache_dir=tmp_path / "b", workers=2, progress=False)
    c = _speech.load_corpus(voices, 1, 8, cache_dir=tmp_path / "c", workers=2, progress=False)
    assert np.array_equal(a.waveforms, b.waveforms) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.waveforms, c.waveforms)
    # a corpus of fewer voices holds exactly those voices' clips of the larger one (seed 0)
    d = _speech.load_corpus(voices, 1, 0, cache_dir=tmp_path / "d", workers=2, progress=False)
    big = np.concatenate([small.waveforms[s].numpy() for s in ("train", "val", "test")])
    rows = {r.tobytes() for r in big}
    assert all(r.tobytes() in rows for r in d.waveforms)


@needs_tools
def test_second_load_reads_the_cache(cache, monkeypatch, small):
    def no_synthesis(*args, **kwargs):
        raise AssertionError("synthesised again instead of reading the cache")

    monkeypatch.setattr(_speech, "_synthesise", no_synthesis)
    again = zoo.load_dataset("spoken-digits", cache_dir=cache, **SMALL)
    assert torch.equal(again.train.tensors[0], small.train.tensors[0])
    assert torch.equal(again.waveforms["test"], small.waveforms["test"])
    folder, = [p for p in cache.iterdir() if p.name.startswith("spoken-digits-")
               and (p / "meta.json").stat().st_size < 30_000]
    import librosa
    assert sorted(p.name for p in folder.iterdir()) == [
        "clips.npz", f"logmel-40-512-400-160-librosa{librosa.__version__}.npy", "meta.json"]


@needs_tools
def test_log_mel_features_are_cached_and_a_damaged_file_is_recomputed(cache, monkeypatch, small):
    # Arrange: the first load (fixture) cached the features next to the clips
    from zoo.data import spoken_digits

    def no_features(*args, **kwargs):
        raise AssertionError("computed the log-mel features again instead of reading them")

    # Act / Assert: a second load reads them; the same tensors
    with monkeypatch.context() as m:
        m.setattr(spoken_digits, "log_mel", no_features)
        again = zoo.load_dataset("spoken-digits", cache_dir=cache, **SMALL)
    assert torch.equal(again.train.tensors[0], small.train.tensors[0])
    # a damaged file is recomputed (and rewritten), with the same values
    folder = cache / f"spoken-digits-{_speech._key(_speech.all_voices()[:6], 1, 0)}"
    path, = folder.glob("logmel-40-*.npy")
    path.write_bytes(b"not an npy file")
    fresh = zoo.load_dataset("spoken-digits", cache_dir=cache, **SMALL)
    assert torch.equal(fresh.test.tensors[0], small.test.tensors[0])
    assert np.load(path).shape == (sum(len(w) for w in small.waveforms.values()), 40, 101)


def test_cache_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(_speech.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _speech.cache_root() == tmp_path / "xdg" / "deepscope"
    monkeypatch.setenv(_speech.CACHE_ENV, str(tmp_path / "mine"))
    assert _speech.cache_root() == tmp_path / "mine"
    assert _speech.cache_root(tmp_path / "arg") == tmp_path / "arg"


def test_missing_tools_raise_a_typed_error_naming_the_debian_packages(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))             # neither espeak-ng nor sox on PATH
    with pytest.raises(MissingExtraError) as err:
        zoo.load_dataset("spoken-digits", cache_dir=tmp_path / "empty", **SMALL)
    assert str(err.value) == (
        "The spoken-digits data set synthesises its clips with espeak-ng and sox; espeak-ng and "
        "sox are not installed (not on PATH). Install the Debian packages with `sudo apt-get "
        "install espeak-ng sox` (scripts/setup.sh does), or load a corpus already in the cache.")


def test_bad_options_are_named():
    with pytest.raises(InvalidInputError, match="'voices' parameter of spoken-digits must be an "
                                                "int >= 3 and <= 96. Got 2 instead"):
        zoo.load_dataset("spoken-digits", voices=2)
    with pytest.raises(InvalidInputError, match="'layout' parameter of spoken-digits must be one "
                                                "of 'spectrogram', 'frames'"):
        zoo.load_dataset("spoken-digits", layout="image")


# ----------------------------------------------------------------------------- splits
def test_voice_split_is_disjoint_stratified_and_seeded():
    genders = [v.gender for v in _speech.all_voices()]
    tr, va, te = voice_split(genders, 0.1, 0.2, seed=0)
    assert (len(tr), len(va), len(te)) == (67, 10, 19)
    assert not (set(tr) & set(va) or set(tr) & set(te) or set(va) & set(te))
    assert sorted([*tr, *va, *te]) == list(range(96))
    female = {i for i, g in enumerate(genders) if g == "female"}      # 40 of 96
    assert len(female & set(te)) in (7, 8, 9)
    assert not np.array_equal(te, voice_split(genders, 0.1, 0.2, seed=1)[2])


@needs_tools
def test_splits_are_speaker_independent(small):
    by_split = {s: set(small.voices[s]) for s in ("train", "val", "test")}
    assert not by_split["train"] & by_split["test"]
    assert not by_split["train"] & by_split["val"] and not by_split["val"] & by_split["test"]
    assert {s: sorted(v) for s, v in by_split.items()} == small.info["voices"]
    assert len(by_split["test"]) == 1 and len(by_split["val"]) == 1


# ----------------------------------------------------------------------------- features
@needs_tools
def test_spectrogram_shapes_and_layouts(cache, small):
    frames = zoo.load_dataset("spoken-digits", cache_dir=cache, layout="frames", **SMALL)
    wide = zoo.load_dataset("spoken-digits", cache_dir=cache, n_mels=64, **SMALL)
    assert small.input_shape == (1, 40, 101) and small.modality is Modality.AUDIO
    assert tuple(small.test.tensors[0].shape) == (10, 1, 40, 101)
    assert frames.input_shape == (101, 40) and wide.input_shape == (1, 64, 101)
    assert torch.allclose(frames.test.tensors[0], small.test.tensors[0][:, 0].transpose(1, 2))
    train = small.train.tensors[0]
    assert abs(float(train.mean())) < 1e-4 and abs(float(train.std()) - 1) < 1e-3


def test_log_mel_puts_a_tone_in_its_mel_band():
    librosa = pytest.importorskip("librosa")
    t = np.arange(16000) / 16000
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t) * 32767).astype(np.int16)[None]
    spec = log_mel(tone, n_mels=40)                                   # [1, 40, 101]
    centres = librosa.mel_frequencies(n_mels=42, fmin=20.0, fmax=8000.0)[1:-1]
    assert spec.shape == (1, 40, 101)
    assert int(spec[0].mean(1).argmax()) == int(np.abs(centres - 1000).argmin())


@needs_tools
def test_wav_bytes_round_trip_the_waveform(small):
    data = small.wav_bytes("test", 3)
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert np.array_equal(pcm, small.waveforms["test"][3].numpy())


# ----------------------------------------------------------------------------- models
def _spectrogram_model(bundle):
    return zoo.create_model("cnn", **bundle.model_kwargs(), channels=[4, 8], hidden=0,
                            modality="audio").eval()


@needs_tools
@pytest.mark.parametrize("method", explain.list_methods())
def test_every_attribution_method_explains_a_spectrogram_model(small, method):
    # Arrange
    model = _spectrogram_model(small)
    x = small.test.tensors[0][:2]
    if method == "shap_kernel":  # one weight per feature: refused, naming the alternatives
        with pytest.raises(InvalidInputError, match=r"Kernel SHAP fits one weight per feature "
                           r"and this input has 4040 \(at most 128\); use 'shap_gradient'"):
            explain.attribute(model, x, method=method)
        return
    # Act
    attr = explain.attribute(model, x, method=method)
    # Assert: finite values of the input's shape, or a fallback that says so
    assert tuple(attr.values.shape) == tuple(x.shape)
    assert bool(torch.isfinite(attr.values).all())
    assert attr.requested_method == method
    if attr.method != method:
        assert any(method in w for w in attr.warnings), attr.warnings
    assert model.card.modality is Modality.AUDIO


@needs_tools
def test_speech_presets_are_registered_with_audio_cards(small):
    for name, layout in (("cnn-speech", "spectrogram"), ("rnn-speech", "frames")):
        p = zoo.get_preset(name)
        assert p.dataset == "spoken-digits" and p.healthy
        assert p.dataset_options.get("layout", "spectrogram") == layout
        assert p.model_kwargs["modality"] == "audio"


def _reduced(preset: str, cache, **config):
    """The preset on 24 voices x 2 renditions (~340 training clips) in batches of 32."""
    config = {"batch_size": 32, "epochs": 8, **config}
    return zoo.train(preset=preset, progress=False, device="cpu",
                     dataset_options={"cache_dir": cache, "voices": 24, "renditions": 2,
                                      "progress": False}, **config)


@needs_tools
@pytest.mark.slow
@pytest.mark.parametrize("preset,epochs,floor", [("cnn-speech", 15, 0.75),   # measured 0.88
                                                 ("rnn-speech", 8, 0.6)])   # measured 0.69
def test_speech_presets_at_reduced_size_reach_a_floor(cache, preset, epochs, floor):
    run = _reduced(preset, cache, epochs=epochs)
    assert run.test_accuracy >= floor, run.metrics


@needs_tools
@pytest.mark.slow
def test_temporal_gradient_decay_runs_on_rnn_speech(cache):
    run = _reduced("rnn-speech", cache, epochs=2)
    finding, = explain.diagnose(run.history, checks=["temporal-gradient-decay"])
    assert finding.severity is not explain.Severity.SKIPPED
    assert finding.evidence["time_steps"] == 101
    assert np.isfinite(finding.evidence["ratio"]) and finding.evidence["ratio"] > 0
