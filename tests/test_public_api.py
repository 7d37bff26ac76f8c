"""The public API of each package is pinned: a name added to or dropped from an ``__all__`` is a
decision someone makes on purpose (and updates here), never an accident of an import."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "explain": [
        "__version__", "Severity", "Finding", "Attribution", "TrainingMonitor", "History",
        "diagnose", "list_checks", "attribute", "list_methods", "evaluate", "Quality", "Verdict",
        "agreement", "list_metrics", "audit", "Report", "calibrate", "drift", "Modality",
        "ModelCard", "card_of", "DeepscopeError", "InvalidInputError", "UnknownNameError",
        "DataMismatchError", "CorruptRunError", "UnsafeFileError", "InvalidTypeError",
        "DataNotFoundError", "TrainingDivergedError", "AttributionError", "MissingExtraError",
        "RunExistsError", "RunLockedError", "RunWriteError"],
    "explain.attribution": [
        "attribute", "list_methods", "get_explainer", "method_options", "Attribution",
        "Explainer", "EXPLAINERS", "register_explainer", "IntegratedGradients", "Saliency",
        "InputXGradient", "DeepLift", "GradientShap", "SmoothGrad", "Occlusion",
        "FeatureAblation", "GradCam", "ShapGradient", "ShapDeep", "ShapKernel"],
    "explain.checks": [
        "Check", "CheckContext", "MissingInput", "Onset", "THRESHOLDS", "causal_summary",
        "Threshold", "diagnose", "get_check", "learning_curve", "list_checks", "register_check"],
    "explain.monitor": ["TrainingMonitor", "History"],
    "explain.quality": [
        "evaluate", "Quality", "Verdict", "agreement", "list_metrics", "get_metric",
        "register_metric", "TrustMetric", "MetricContext", "MetricResult", "MetricStatus",
        "METRICS", "THRESHOLDS", "TrustThreshold", "DEFAULT_THRESHOLDS", "default_explain_fn"],
    "explain.auditing": [
        "audit", "Report", "AuditVerdict", "SCHEMA", "STAGES", "performance_summary",
        "expected_calibration_error"],
    "explain.report": ["render_html", "render_markdown", "md_escape", "Table", "question_tables"],
    "explain.figures": ["attention", "attribution", "audio", "performance", "predictions",
                        "questions", "report", "training"],
    "zoo": [
        "Modality", "ModelCard", "DatasetBundle", "TensorPairDataset", "create_model",
        "list_models", "load_dataset", "list_datasets", "register_model", "register_dataset",
        "from_arrays", "from_image_folder", "TrainConfig", "Run", "train", "load_run",
        "list_presets", "get_preset", "learning_curve"],
    "deepscope": ["main"],
}


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_public_names_are_pinned_and_each_resolves(package):
    module = importlib.import_module(package)
    assert list(module.__all__) == PUBLIC[package]
    for name in module.__all__:
        if name != "__version__":
            assert getattr(module, name) is not None, f"{package}.{name}"


def test_import_explain_loads_no_heavy_or_optional_part():
    import subprocess
    import sys

    code = ("import sys, explain; bad = [m for m in ('streamlit', 'lightning', 'transformers', "
            "'zoo', 'dashboard', 'shap', 'captum') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr
