"""Deletion and insertion curves (Petsiuk et al. 2018) against a random-order baseline.

Deletion: starting from the input, replace feature units with the baseline value in the order of
the attribution (most positive evidence first) and follow the probability of the explained class.
A faithful map makes it fall fast, so its area under the curve (AUC) is *below* the AUC of the same
curve in a random order. Insertion: start from the baseline and put units back in the same order;
a faithful map makes the probability rise fast, so its AUC is *above* the random-order one.

The x-axis is the fraction of units changed (0 to 1) and the y-axis the class probability, so every
AUC lies in [0, 1]. All perturbed versions of one sample (both curves, the attribution order and
every random order, all ``steps + 1`` points) go through the model in a few batched forwards.
Graded against ``min_faithfulness_margin`` (:mod:`explain.quality.thresholds`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from explain.card import Modality
from explain.quality._common import class_scores, default_baseline, feature_units, to_list
from explain.quality.base import (
    Criterion,
    MetricContext,
    MetricOption,
    MetricResult,
    TrustMetric,
    register_metric,
)

__all__ = ["Curves", "Faithfulness", "deletion_insertion"]


@dataclass(frozen=True)
class Curves:
    """Per-sample AUCs and the mean curves.

    Attributes
    ----------
    fractions : ``[steps + 1]`` fraction of units changed.
    deletion, insertion : ``[n]`` AUC of the attribution order per sample.
    random_deletion, random_insertion : ``[n]`` AUC of random orders (mean over seeds).
    mean_curves : name -> ``[steps + 1]`` mean probability over samples, for
        ``"deletion"``, ``"insertion"``, ``"random_deletion"``, ``"random_insertion"``.
    """

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    random_deletion: np.ndarray
    random_insertion: np.ndarray
    mean_curves: dict[str, np.ndarray]


def _baseline_like(x: torch.Tensor, baselines: torch.Tensor | None, modality: Modality,
                   pad_id: int = 0) -> torch.Tensor:
    """Per-sample replacement values: ``pad_id`` for tokens, the attribution's baselines when
    they match the inputs, else :func:`default_baseline`."""
    if modality is Modality.TEXT or baselines is None:
        return default_baseline(x, modality, pad_id)
    b = baselines.detach().cpu().to(x.dtype)
    if b.shape == x.shape:
        return b
    if b.dim() == x.dim() and b.shape[0] == 1:
        return b.expand_as(x).clone()
    if b.dim() == x.dim() and b.shape[1:] == x.shape[1:]:
        return b.mean(0, keepdim=True).expand_as(x).clone()   # a baseline distribution
    return default_baseline(x, modality)


def _unit_scores(values: torch.Tensor, unit: torch.Tensor, n_ids: int) -> torch.Tensor:
    """Sum of attribution per unit: ``[n_ids]``, ``-inf`` for ids with no real element."""
    valid = unit >= 0
    scores = torch.zeros(n_ids, dtype=torch.float64)
    scores.index_add_(0, unit[valid], values[valid].double())
    present = torch.zeros(n_ids, dtype=torch.bool)
    present[unit[valid]] = True
    scores[~present] = -float("inf")
    return scores


def _ranks(order: torch.Tensor, n_ids: int) -> torch.Tensor:
    """rank[u] = position of unit ``u`` in ``order``; units not in ``order`` rank last."""
    rank = torch.full((n_ids + 1,), n_ids + 1, dtype=torch.long)
    rank[order] = torch.arange(order.numel())
    return rank


def _sample_curves(x: torch.Tensor, base: torch.Tensor, unit: torch.Tensor,
                   orders: list[torch.Tensor], n_ids: int, steps: int) -> torch.Tensor:
    """Perturbed inputs ``[2 * R * (steps + 1), *sample]`` for one sample: deletion then
    insertion, for each of the ``R`` orders, at each step."""
    n_real = orders[0].numel()
    counts = torch.round(torch.linspace(0, 1, steps + 1) * n_real).long()      # [K]
    safe_unit = torch.where(unit >= 0, unit, torch.full_like(unit, n_ids))
    batches = []
    for mode in ("deletion", "insertion"):
        for order in orders:
            elem_rank = _ranks(order, n_ids)[safe_unit]                         # [*sample]
            changed = elem_rank[None] < counts.view(-1, *[1] * x.dim())          # [K, *sample]
            if mode == "deletion":
                batches.append(torch.where(changed, base[None], x[None]))
            else:
                real = (unit >= 0)[None]
                batches.append(torch.where(changed | ~real, x[None], base[None]))
    return torch.cat(batches)


def deletion_insertion(model: nn.Module, inputs: torch.Tensor, values: torch.Tensor,
                       target: torch.Tensor, baselines: torch.Tensor | None, modality: Modality,
                       *, steps: int = 20, n_random: int = 3, seed: int = 0,
                       patch_size: int | None = None, batch_size: int = 256,
                       pad_id: int = 0) -> Curves:
    """Deletion/insertion AUCs of ``values`` and of random orders.

    Parameters
    ----------
    model : the model, already in eval mode (see ``model_guard``).
    inputs : ``[n, *sample]`` the explained inputs; ``values`` has the same shape.
    target : ``[n]`` class explained per sample.
    baselines : the attribution's baselines (replacement values), or ``None`` for zeros.
    modality : decides the feature units (patches, frame x feature cells, tokens, features).
    steps : number of intervals of the curve (``steps + 1`` points).
    n_random : random orders averaged for the random baseline.
    seed : seed of the random orders.
    patch_size : image patch side in pixels (default: ~16 patches along the longer side).
    batch_size : rows per forward pass.
    """
    unit, n_ids = feature_units(inputs, modality, patch_size, pad_id)
    base = _baseline_like(inputs, baselines, modality, pad_id)
    rng = np.random.default_rng(seed)
    fractions = np.linspace(0.0, 1.0, steps + 1)
    k, r = steps + 1, 1 + n_random
    all_probs = []                                                               # [n, 2, R, K]
    for i in range(inputs.shape[0]):
        scores = _unit_scores(values[i], unit[i], n_ids)
        real_ids = torch.nonzero(torch.isfinite(scores))[:, 0]
        ranked = real_ids[torch.argsort(-scores[real_ids], stable=True)]
        orders = [ranked] + [real_ids[torch.from_numpy(rng.permutation(real_ids.numel()))]
                             for _ in range(n_random)]
        batch = _sample_curves(inputs[i], base[i], unit[i], orders, n_ids, steps)
        t = target[i].repeat(batch.shape[0])
        probs = class_scores(model, batch, t, batch_size=batch_size, probability=True)
        all_probs.append(probs.view(2, r, k).numpy())
    stacked = np.stack(all_probs) if all_probs else np.zeros((0, 2, r, k))      # [n, 2, R, K]
    auc = np.trapezoid(stacked, fractions, axis=-1)                              # [n, 2, R]
    mean = stacked.mean(0) if len(stacked) else np.zeros((2, r, k))
    return Curves(
        fractions=fractions,
        deletion=auc[:, 0, 0], insertion=auc[:, 1, 0],
        random_deletion=auc[:, 0, 1:].mean(-1), random_insertion=auc[:, 1, 1:].mean(-1),
        mean_curves={"deletion": mean[0, 0], "insertion": mean[1, 0],
                     "random_deletion": mean[0, 1:].mean(0),
                     "random_insertion": mean[1, 1:].mean(0)},
    )


@register_metric("faithfulness")
class Faithfulness(TrustMetric):
    """Deletion and insertion AUCs against the same curves in random order."""

    title = "Faithfulness"
    thresholds = ("min_faithfulness_margin",)
    options = (
        MetricOption("steps", 20, "Intervals of the deletion/insertion curves.", minimum=2),
        MetricOption("n_random", 3, "Random orders averaged for the random-order AUC.",
                     minimum=1),
        MetricOption("patch_size", None, "Image patch side in pixels (default: about 16 "
                     "patches along the longer side).", minimum=1, optional=True),
    )

    def compute(self, context: MetricContext) -> MetricResult:
        c = deletion_insertion(context.model, context.inputs, context.values, context.target,
                               context.baselines, context.modality,
                               steps=context.option("steps"), n_random=context.option("n_random"),
                               seed=context.seed, patch_size=context.option("patch_size"),
                               batch_size=context.batch_size, pad_id=context.pad_id)
        per_sample = {"deletion_auc": c.deletion, "insertion_auc": c.insertion,
                      "random_deletion_auc": c.random_deletion,
                      "random_insertion_auc": c.random_insertion}
        curves = {"fraction": c.fractions, **c.mean_curves}
        return MetricResult(self.name,
                            per_sample={k: tuple(to_list(v)) for k, v in per_sample.items()},
                            curves={k: tuple(to_list(v)) for k, v in curves.items()})

    def criteria(self, result: MetricResult, context: MetricContext) -> tuple[Criterion, ...]:
        d, rd = result.median("deletion_auc"), result.median("random_deletion_auc")
        i, ri = result.median("insertion_auc"), result.median("random_insertion_auc")
        if d is None or rd is None or i is None or ri is None:
            return ()
        margin = context.threshold("min_faithfulness_margin")
        return (
            Criterion("deletion", d < rd - margin,
                      f"deletion AUC {d:.2f} is not below the random-order {rd:.2f}"),
            Criterion("insertion", i > ri + margin,
                      f"insertion AUC {i:.2f} is not above the random-order {ri:.2f}"),
        )

    def describe(self, result: MetricResult) -> str:
        d, rd = result.median("deletion_auc"), result.median("random_deletion_auc")
        i, ri = result.median("insertion_auc"), result.median("random_insertion_auc")
        if d is None or rd is None or i is None or ri is None:
            return ""
        return (f"deletion AUC {d:.2f} vs {rd:.2f} random, insertion AUC {i:.2f} vs {ri:.2f} "
                f"random")
