"""One attribution method per file; importing this package registers them all."""

from explain.attribution.methods.deeplift import DeepLift
from explain.attribution.methods.feature_ablation import FeatureAblation
from explain.attribution.methods.grad_cam import GradCam
from explain.attribution.methods.gradient_shap import GradientShap
from explain.attribution.methods.input_x_gradient import InputXGradient
from explain.attribution.methods.integrated_gradients import IntegratedGradients
from explain.attribution.methods.occlusion import Occlusion
from explain.attribution.methods.saliency import Saliency
from explain.attribution.methods.shap_deep import ShapDeep
from explain.attribution.methods.shap_gradient import ShapGradient
from explain.attribution.methods.shap_kernel import ShapKernel
from explain.attribution.methods.smoothgrad import SmoothGrad

__all__ = ["IntegratedGradients", "Saliency", "InputXGradient", "DeepLift", "GradientShap",
           "SmoothGrad", "Occlusion", "FeatureAblation", "GradCam", "ShapGradient", "ShapDeep",
           "ShapKernel"]
