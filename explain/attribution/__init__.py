"""Attributions through captum and shap: one :class:`Explainer` per method, a registry, and
:func:`attribute` in front. Preflight checks and fallbacks keep values honest; a model guard
keeps the model untouched; batching is measured per model.

Examples
--------
>>> import torch, explain
>>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
>>> a = explain.attribute(model.eval(), torch.randn(5, 4), method="saliency")
>>> a.values.shape, a.method
(torch.Size([5, 4]), 'saliency')
"""

from explain.attribution.base import EXPLAINERS, Explainer, register_explainer
from explain.attribution.front import attribute, get_explainer, list_methods, method_options
from explain.attribution.methods import (
    DeepLift,
    FeatureAblation,
    GradCam,
    GradientShap,
    InputXGradient,
    IntegratedGradients,
    Occlusion,
    Saliency,
    ShapDeep,
    ShapGradient,
    ShapKernel,
    SmoothGrad,
)
from explain.attribution.result import Attribution

__all__ = [
    "attribute", "list_methods", "get_explainer", "method_options", "Attribution", "Explainer",
    "EXPLAINERS", "register_explainer", "IntegratedGradients", "Saliency", "InputXGradient",
    "DeepLift", "GradientShap", "SmoothGrad", "Occlusion", "FeatureAblation", "GradCam",
    "ShapGradient", "ShapDeep", "ShapKernel",
]
