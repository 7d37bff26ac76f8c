"""The :class:`Run`: a trained model with everything needed to explain and audit it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from explain.card import ModelCard
from zoo.config import TrainConfig

if TYPE_CHECKING:
    from explain.auditing.report import Report
    from zoo.data.base import DatasetBundle

__all__ = ["Run"]

Progress = Callable[[str, int, int], None]


@dataclass
class Run:
    """A trained model and its record, as written to / read from a run folder.

    Attributes
    ----------
    model : the trained ``nn.Module`` (in eval mode after :func:`zoo.load_run`).
    card : its :class:`explain.ModelCard` (``None`` for a module of your own without one).
    config : the :class:`zoo.TrainConfig` it was trained with.
    history : the :class:`explain.History` recorded while training (``None`` if not recorded).
    metrics : test metrics: ``test_accuracy``, ``test_loss``, ``per_class``, ``best_epoch``, ...
    model_name, model_kwargs : how to rebuild the architecture (``zoo.create_model``).
    dataset_name, dataset_options : how to reload the data (``zoo.load_dataset``), or ``None``
        for data the user passed in.
    preset : the preset name, if trained from one.
    path : the run folder, or ``None`` if not saved.
    vocab : the tokenizer vocabulary for text models, else ``None``.
    tokenizer : the Hugging Face tokenizer the data was encoded with (saved in the run folder as
        ``tokenizer.json`` and ``tokenizer_config.json``, restored from there), else ``None``.
    epoch : epochs completed.
    versions : package versions at training time.
    """

    model: nn.Module
    card: ModelCard | None
    config: TrainConfig
    history: Any
    metrics: dict[str, Any]
    model_name: str
    model_kwargs: dict[str, Any]
    dataset_name: str | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    preset: str | None = None
    path: Path | None = None
    vocab: Any = None
    tokenizer: Any = None
    epoch: int = 0
    versions: dict[str, str] = field(default_factory=dict)
    _dataset: Any = field(default=None, repr=False)

    @property
    def dataset(self) -> DatasetBundle | None:
        """The :class:`zoo.DatasetBundle` the model was trained on (loaded on first access).

        ``None`` for data passed in by the user (deepscope cannot reload it).
        """
        if self._dataset is None and self.dataset_name is not None:
            from zoo.registry import load_dataset
            self._dataset = load_dataset(self.dataset_name, **self.dataset_options)
        return self._dataset

    @property
    def test_accuracy(self) -> float | None:
        return self.metrics.get("test_accuracy")

    def audit(self, *, samples: int = 8, progress: Progress | None = None,
              data_sanity: bool = False, **options: Any) -> Report:
        """Audit this run on its test split with :func:`explain.audit`.

        The validation split is the audit's ``val_data`` (calibration temperature, reference of
        the distribution-shift test) and the training split its ``train_data`` (shallow
        baselines).

        The model, card, history and vocabulary are the run's (and, for sound, the test clips:
        each explained sample keeps its clip for playback); the model card also records the
        run's config, data (name, split sizes, source), test metrics, folder and the package
        versions it was trained with. A run trained on data deepscope cannot reload
        (``dataset is None``) is audited without data, and the report says so.

        Parameters
        ----------
        samples : how many test inputs to explain, spread over the classes.
        progress : called as ``progress(stage, done, total)`` at each audit stage.
        data_sanity : also run the data-randomization test (Adebayo et al. 2018): retrain the
            run's recipe on permuted labels (:func:`zoo.learning.permuted_label_model`, about
            half the training cost) and grade each attribution method against it, next to the
            model-randomization test. The retraining is timed as ``Report.timings
            ["data_sanity_training"]`` and each method's correlation in its
            ``quality.timings["data_sanity"]``; both outside the audit's stages.
        **options : more arguments for :func:`explain.audit` (``checks``, ``methods``,
            ``title``, ``meta``, ...).

        Returns
        -------
        explain.Report

        Examples
        --------
        >>> import zoo
        >>> run = zoo.train(preset="mlp-digits", epochs=1, progress=False, monitor=False)
        >>> report = run.audit(samples=0, checks=["non-finite"])
        >>> report.title
        'Audit of mlp-digits (digits)'
        """
        from explain import audit

        bundle = self.dataset
        data: dict[str, Any] = {"name": self.dataset_name, "split": "test"}
        if bundle is not None:
            data.update(name=bundle.name, info=dict(bundle.info), sizes=bundle.sizes())
        meta = {"config": self.config.to_dict(), "data": data, "metrics": self.metrics,
                "run_path": str(self.path or ""), "trained_with": self.versions,
                **dict(options.pop("meta", None) or {})}
        vocab = self.vocab if self.vocab is not None else (None if bundle is None else bundle.vocab)
        if self.tokenizer is not None:  # mistakes shown as the tokenizer's words
            options.setdefault("tokenizer", self.tokenizer)
        name = self.preset or (self.card.name if self.card is not None else self.model_name)
        title = options.pop("title", f"Audit of {name} ({data['name']})")
        if bundle is not None:
            options.setdefault("val_data", bundle.val)
            options.setdefault("train_data", bundle.train)
        from zoo.data.spoken_digits import AudioBundle

        if isinstance(bundle, AudioBundle) and "test" in bundle.waveforms:
            options.setdefault("waveforms", bundle.waveforms["test"])
            options.setdefault("sample_rate", bundle.sample_rate)
        trained = self._data_sanity(options) if data_sanity else None
        report = audit(self.model, None if bundle is None else bundle.test, history=self.history,
                       samples=samples, vocab=vocab, card=self.card, meta=meta,
                       progress=progress, title=title, **options)
        if trained is None:
            return report
        return replace(report, timings={**report.timings, "data_sanity_training": trained})

    def _data_sanity(self, options: dict[str, Any]) -> float:
        """Train the permuted-label twin into ``options`` (trust metric + its model); seconds."""
        from explain.auditing.auditor import TRUST_METRICS
        from zoo.learning import permuted_label_model

        t0 = time.perf_counter()
        twin = permuted_label_model(self)
        seconds = time.perf_counter() - t0
        metrics = options.setdefault("trust_metrics", TRUST_METRICS)
        if metrics is not None:  # None: evaluate's defaults, which add data_sanity with a twin
            options["trust_metrics"] = (*[m for m in metrics if m != "data_sanity"],
                                        "data_sanity")
        options["trust_options"] = {**dict(options.get("trust_options") or {}),
                                    "data_model": twin}
        return seconds

    def __repr__(self) -> str:
        acc = self.metrics.get("test_accuracy")
        acc_s = f"{acc:.4f}" if isinstance(acc, float) else "n/a"
        return (f"Run(model={self.model_name!r}, dataset={self.dataset_name!r}, "
                f"epochs={self.epoch}, test_accuracy={acc_s}, path={str(self.path)!r})")
