"""Completeness, infidelity and sensitivity of an explanation.

* Completeness (Sundararajan et al. 2017): for path methods the attributions sum to
  ``f(x) - f(baseline)`` (logit of the explained class). We report the error relative to
  ``|f(x) - f(baseline)|``, recomputed from the values and the model for float inputs (not
  trusted from the method); token attributions live in embedding space, so there the method's
  ``convergence_delta`` is used.
* Infidelity (Yeh et al. 2019, ``captum.metrics.infidelity``, ``normalize=True`` so it does not
  depend on the scale of the map): how badly ``perturbation . attribution`` predicts the change of
  the logit. Maps that already multiply by ``input - baseline`` (integrated gradients, DeepLift,
  SHAP, occlusion, ...) are tested with random subset removal (units replaced by the baseline);
  local maps (saliency, guided backprop, ...) with small Gaussian noise.
* Sensitivity (``captum.metrics.sensitivity_max``): the largest change of the map, relative to its
  norm, when the input moves by a small uniform noise (radius relative to the input's spread).

Text inputs are token ids, which cannot be nudged by noise: infidelity and sensitivity are not
defined for them and are skipped with a note. Padding is never perturbed.
"""

from __future__ import annotations

import torch
from torch import nn

from explain.card import Modality
from explain.errors import AttributionError
from explain.quality._common import (
    ExplainFn,
    class_scores,
    default_baseline,
    device_of,
    real_mask,
)

__all__ = ["COMPLETE_METHODS", "MULTIPLY_BY_INPUTS", "completeness", "infidelity", "sensitivity"]

#: Methods whose attributions should sum to f(x) - f(baseline).
COMPLETE_METHODS = frozenset({
    "integrated_gradients", "layer_integrated_gradients", "deeplift", "deeplift_shap",
    "gradient_shap", "shap_deep", "shap_gradient", "shap_kernel", "shapley_value_sampling",
    "lrp",
})
#: Methods whose maps are "global" (already multiplied by input - baseline).
MULTIPLY_BY_INPUTS = COMPLETE_METHODS | frozenset({
    "input_x_gradient", "occlusion", "feature_ablation", "lime", "feature_permutation",
})


def _baseline_scores(model: nn.Module, inputs: torch.Tensor, baselines: torch.Tensor | None,
                     target: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Logit of the target at the baseline, ``[n]``: per sample, or the mean over a baseline set."""
    n = inputs.shape[0]
    if baselines is None or baselines.dim() != inputs.dim() or (
            not inputs.is_floating_point() and baselines.is_floating_point()):
        b = torch.zeros_like(inputs)
    else:
        b = baselines.detach().cpu().to(inputs.dtype)
    if b.shape == inputs.shape:
        return class_scores(model, b, target, batch_size=batch_size, probability=False)
    if b.shape[1:] == inputs.shape[1:]:
        # A baseline distribution (GradientSHAP, DeepLiftSHAP): f(b) is the expectation over it.
        rows = b.repeat_interleave(n, 0) if b.shape[0] > 1 else b.expand_as(inputs)
        t = target.repeat(b.shape[0]) if b.shape[0] > 1 else target
        s = class_scores(model, rows, t, batch_size=batch_size, probability=False)
        return s.view(b.shape[0], n).mean(0) if b.shape[0] > 1 else s
    zeros = torch.zeros_like(inputs)
    return class_scores(model, zeros, target, batch_size=batch_size, probability=False)


def completeness(model: nn.Module, inputs: torch.Tensor, values: torch.Tensor,
                 target: torch.Tensor, baselines: torch.Tensor | None, *,
                 delta: torch.Tensor | None = None,
                 batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Relative completeness error per sample and ``f(x) - f(baseline)``.

    Returns ``(error [n], gap [n])`` with ``error = |sum(values) - gap| / |gap|`` (NaN where the
    gap is below 1e-6: the method had nothing to explain). For float inputs the gap is recomputed
    from the model; token ids are attributed in embedding space, where the baseline is not a
    sequence of ids the model could be run on, so the method's own ``delta``
    (``sum(values) - gap``) is used there.
    """
    total = values.reshape(values.shape[0], -1).sum(1)
    if not inputs.is_floating_point():
        if delta is None:
            raise AttributionError(
                "completeness of a token attribution needs the method's convergence_delta "
                "(the baseline lives in embedding space). Recompute it with explain.attribute.")
        gap = total - delta.detach().double().cpu().reshape(-1)[:total.shape[0]]
    else:
        fx = class_scores(model, inputs, target, batch_size=batch_size, probability=False)
        gap = fx - _baseline_scores(model, inputs, baselines, target, batch_size)
    err = (total - gap).abs() / gap.abs()
    err[gap.abs() < 1e-6] = float("nan")
    return err, gap


def _spread(inputs: torch.Tensor, mask: torch.Tensor) -> float:
    real = inputs[mask]
    s = float(real.float().std()) if real.numel() > 1 else 0.0
    return s if s > 0 else 1.0


def infidelity(model: nn.Module, inputs: torch.Tensor, values: torch.Tensor,
               target: torch.Tensor, baselines: torch.Tensor | None, method: str,
               modality: Modality, *, n_perturb: int = 16, noise: float = 0.1,
               remove_fraction: float = 0.25, seed: int = 0,
               batch_size: int = 256) -> torch.Tensor:
    """Normalized infidelity per sample ``[n]`` (lower is better; captum's definition)."""
    from captum.metrics import infidelity as captum_infidelity
    from captum.metrics import infidelity_perturb_func_decorator

    device = device_of(model)
    mask = real_mask(inputs, modality).to(device)
    x = inputs.to(device).float()
    base = _float_baseline(inputs, baselines, modality).to(device)
    sigma = noise * _spread(inputs, mask.cpu())
    gen = torch.Generator(device="cpu").manual_seed(seed)
    global_map = method in MULTIPLY_BY_INPUTS

    def _expand(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        reps = like.shape[0] // t.shape[0]
        return t.repeat_interleave(reps, 0) if reps > 1 else t

    @infidelity_perturb_func_decorator(global_map)
    def perturb(xs: torch.Tensor, bs: torch.Tensor | None = None) -> torch.Tensor:
        m = _expand(mask, xs)
        if global_map:
            drop = (torch.rand(xs.shape, generator=gen) < remove_fraction).to(xs.device) & m
            return torch.where(drop, bs if bs is not None else torch.zeros_like(xs), xs)
        eps = torch.randn(xs.shape, generator=gen).to(xs.device) * sigma
        return xs - eps * m

    try:
        out = captum_infidelity(
            model, perturb, x, values.to(device).float(),
            baselines=base if global_map else None, target=target.to(device),
            n_perturb_samples=n_perturb,
            max_examples_per_batch=_chunk(batch_size, inputs, n_perturb), normalize=True)
    except Exception as exc:  # captum failures become our typed error
        raise AttributionError(
            f"captum.metrics.infidelity failed for method {method!r}: {exc}. Drop 'infidelity' "
            f"from metrics= to evaluate the rest.") from exc
    return out.detach().double().cpu()


def _chunk(batch_size: int, inputs: torch.Tensor, n_perturb: int) -> int:
    """captum wants ``n <= max_examples_per_batch <= n * n_perturb``."""
    n = inputs.shape[0]
    return max(n, min(batch_size, n * n_perturb))


def _float_baseline(inputs: torch.Tensor, baselines: torch.Tensor | None,
                    modality: Modality) -> torch.Tensor:
    if baselines is not None and baselines.shape == inputs.shape:
        return baselines.detach().cpu().float()
    if baselines is not None and baselines.dim() == inputs.dim() and \
            baselines.shape[1:] == inputs.shape[1:]:
        return baselines.detach().cpu().float().mean(0, keepdim=True).expand_as(inputs).clone()
    return default_baseline(inputs, modality).float()


def sensitivity(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor,
                explain_fn: ExplainFn, modality: Modality, *, n_perturb: int = 4,
                radius: float = 0.02, seed: int = 0, batch_size: int = 256) -> torch.Tensor:
    """Max-sensitivity per sample ``[n]``: ``max ||e(x + u) - e(x)|| / ||e(x)||`` over ``u``."""
    from captum.metrics import sensitivity_max

    device = device_of(model)
    mask = real_mask(inputs, modality).to(device)
    r = radius * _spread(inputs, mask.cpu())
    gen = torch.Generator(device="cpu").manual_seed(seed)

    def perturb(xs, perturb_radius=None):  # captum passes a tuple of one tensor
        x0 = xs[0] if isinstance(xs, tuple) else xs
        reps = x0.shape[0] // mask.shape[0]
        m = mask.repeat_interleave(reps, 0) if reps > 1 else mask
        u = (torch.rand(x0.shape, generator=gen) * 2 - 1).to(x0.device) * r
        out = x0 + u * m
        return (out,) if isinstance(xs, tuple) else out

    def explanation(xs, target=None):
        x0 = xs[0] if isinstance(xs, tuple) else xs
        with torch.enable_grad():  # captum calls us under no_grad; shap does not re-enable it
            values = explain_fn(model, x0, target)
        return (values.detach().to(device).float(),)  # captum wants a tuple

    try:
        out = sensitivity_max(explanation, inputs.to(device).float(), perturb_func=perturb,
                              n_perturb_samples=n_perturb,
                              max_examples_per_batch=_chunk(batch_size, inputs, n_perturb),
                              target=target.to(device))
    except Exception as exc:
        raise AttributionError(
            f"captum.metrics.sensitivity_max failed: {exc}. Pass explain_fn= or drop "
            f"'sensitivity' from metrics= to evaluate the rest.") from exc
    return out.detach().double().cpu()
