"""Model-parameter randomization test (Adebayo et al. 2018, "Sanity Checks for Saliency Maps").

On a deep copy of the model, layers are re-initialized one after the other from the output down
(cascading randomization) and the explanation is recomputed. An explanation that depends on what
the model learned must change: its Spearman rank correlation with the original map drops towards
zero. One that stays correlated after every layer is random (e.g. an edge detector that only
reflects the input) does not explain the model and fails the test.

The user's model is never touched: only the copy is randomized, with a private random generator
(the global torch RNG is left as it was). Graded against ``max_sanity_correlation``
(:mod:`explain.quality.thresholds`); a failure makes the verdict ``fails-sanity``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from explain._core.tensors import device_of
from explain.quality._common import ExplainFn, median, real_mask, spearman, to_list
from explain.quality.base import (
    Criterion,
    MetricContext,
    MetricOption,
    MetricResult,
    TrustMetric,
    register_metric,
)
from explain.quality.result import Verdict

__all__ = ["Sanity", "SanityResult", "layer_order", "randomize_module",
           "cascading_randomization", "map_correlations"]


@dataclass(frozen=True)
class SanityResult:
    """Outcome of cascading randomization.

    Attributes
    ----------
    layers : modules with parameters, in the order they were randomized (output first).
    checkpoints : for each point of the curve, the last layer randomized.
    curve : median (over samples) rank correlation with the original map at each checkpoint.
    final : ``[n]`` correlation per sample once every layer is randomized.
    """

    layers: list[str]
    checkpoints: list[str]
    curve: list[float]
    final: np.ndarray


def layer_order(model: nn.Module, x: torch.Tensor) -> list[str]:
    """Names of the modules that own parameters, in the order the forward pass first enters them
    (input -> output). Modules the forward never calls (e.g. the ``out_proj`` that
    ``nn.MultiheadAttention`` uses through its weights) are left out; see :func:`_groups`."""
    owners = [(n, m) for n, m in model.named_modules()
              if any(True for _ in m.parameters(recurse=False))]
    seen: list[str] = []
    handles = []

    def hook_for(name: str):
        def hook(_module, _inputs):
            if name not in seen:
                seen.append(name)
        return hook

    try:
        for name, module in owners:
            handles.append(module.register_forward_pre_hook(hook_for(name)))
        with torch.no_grad():
            model(x.to(device_of(model)))
    finally:
        for h in handles:
            h.remove()
    return seen


def _groups(model: nn.Module, called: list[str]) -> dict[str, list[str]]:
    """Each called module with the parameter owners below it that the forward never called, so
    every parameter is randomized with the closest called module above it."""
    groups = {name: [name] for name in called}
    for name, module in model.named_modules():
        if name in groups or not any(True for _ in module.parameters(recurse=False)):
            continue
        above = [c for c in called if c == "" or name.startswith(c + ".")]
        if above:
            groups[max(above, key=len)].append(name)
    return groups


def randomize_module(module: nn.Module, seed: int) -> None:
    """Re-initialize the module's own parameters (``reset_parameters`` when it has one, else a
    normal draw with the parameter's current spread), without touching the global RNG."""
    device = next(module.parameters(recurse=False)).device
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
            return
        with torch.no_grad():
            for p in module.parameters(recurse=False):
                std = float(p.detach().float().std()) if p.numel() > 1 else 0.0
                p.normal_(0.0, std if std > 0 else 0.02)


def map_correlations(original: torch.Tensor, new: torch.Tensor, mask: torch.Tensor,
                     use_abs: bool) -> np.ndarray:
    """``[n]`` Spearman rank correlation per sample between two maps, over the real elements
    (``mask``) only; ``use_abs`` correlates absolute values (Adebayo's "ABS" variant)."""
    a, b = original.double().cpu(), new.detach().double().cpu().reshape(original.shape)
    if use_abs:
        a, b = a.abs(), b.abs()
    return np.array([spearman(a[i][mask[i]].numpy(), b[i][mask[i]].numpy())
                     for i in range(a.shape[0])])


def cascading_randomization(model: nn.Module, inputs: torch.Tensor, values: torch.Tensor,
                            target: torch.Tensor, explain_fn: ExplainFn, mask: torch.Tensor, *,
                            checkpoints: int = 4, use_abs: bool = False,
                            seed: int = 0) -> SanityResult:
    """Randomize a deep copy of ``model`` layer by layer from the top and track the correlation.

    Parameters
    ----------
    model : the user's model (copied; never changed).
    inputs, values : the explained inputs and their original attribution (same shape).
    target : ``[n]`` explained classes.
    explain_fn : recomputes the explanation, ``explain_fn(model, inputs, target) -> values``.
    mask : bool ``inputs.shape``; only real (non-padding) elements are correlated.
    checkpoints : how many times the explanation is recomputed along the cascade (the last one
        is always after every layer is randomized).
    use_abs : correlate absolute values (Adebayo's "ABS" variant) instead of signed maps.
    seed : seed of the re-initialization.
    """
    clone = copy.deepcopy(model)
    clone.eval()
    called = layer_order(clone, inputs[:1])
    top_down = list(reversed(called))
    groups = _groups(clone, called)
    modules = dict(clone.named_modules())
    n = len(top_down)
    if n == 0:
        nan = np.full(inputs.shape[0], np.nan)
        return SanityResult(layers=[], checkpoints=[], curve=[], final=nan)
    k = min(n, max(1, checkpoints))
    # k points from the output layer down; the last is always "every layer randomized"
    # (linspace(1, n, 1) would be [1]: only the output layer).
    marks = sorted({int(round(v)) for v in np.linspace(1, n, k)}) if k > 1 else [n]
    curve, names, final = [], [], np.full(inputs.shape[0], np.nan)
    done = 0
    for mark in marks:
        for j in range(done, mark):
            for k, name in enumerate(groups[top_down[j]]):
                randomize_module(modules[name], seed + 1000 * j + k)
        done = mark
        dev = device_of(clone)
        new = explain_fn(clone, inputs.to(dev), target.to(dev))
        final = map_correlations(values, new, mask, use_abs)
        curve.append(median(final))
        names.append(top_down[mark - 1])
    return SanityResult(layers=top_down, checkpoints=names, curve=curve, final=final)


def correlation_criterion(name: str, rho: float | None, limit: float, other: str, *,
                          undefined: str) -> tuple[Criterion, ...]:
    """The randomization criterion (Adebayo et al. 2018), shared by the model- and the
    data-randomization tests: the median rank correlation with the map of ``other`` must be at
    most ``limit``, else the method fails sanity; an undefined correlation is its own reason."""
    if rho is None:
        return (Criterion(name, None, f"{undefined} correlation is undefined (constant maps "
                                      "explain nothing)"),)
    return (Criterion(name, rho <= limit, f"rank correlation {rho:.2f} with the map of {other} "
                                          f"> {limit}", fails=Verdict.FAILS_SANITY),)


@register_metric("sanity")
class Sanity(TrustMetric):
    """Rank correlation with the map of a fully randomized copy of the model (per sample)."""

    title = "Sanity (model randomization)"
    thresholds = ("max_sanity_correlation",)
    options = (
        MetricOption("sanity_checkpoints", 4,
                     "Explanations recomputed along the randomization cascade.", minimum=1),
        MetricOption("sanity_abs", False, "Correlate absolute maps (Adebayo's ABS variant) "
                     "instead of signed maps.", kind="bool"),
    )

    def compute(self, context: MetricContext) -> MetricResult:
        s = cascading_randomization(context.model, context.inputs, context.values,
                                    context.target, context.explain_fn,
                                    real_mask(context.inputs, context.modality, context.pad_id),
                                    checkpoints=context.option("sanity_checkpoints"),
                                    use_abs=context.option("sanity_abs"), seed=context.seed)
        return MetricResult(self.name, per_sample={"sanity": tuple(to_list(s.final))},
                            sanity_curve={"layer": tuple(s.checkpoints),
                                          "correlation": tuple(to_list(s.curve)),
                                          "layers": tuple(s.layers)})

    def criteria(self, result: MetricResult, context: MetricContext) -> tuple[Criterion, ...]:
        return correlation_criterion("sanity", result.median("sanity"),
                                     context.threshold("max_sanity_correlation"),
                                     "a fully randomized model", undefined="the sanity")

    def describe(self, result: MetricResult) -> str:
        rho = result.median("sanity")
        layers = len(result.sanity_curve.get("layers", ()))
        return "" if rho is None else (f"rank correlation {rho:.2f} after randomizing all "
                                       f"{layers} layers")
