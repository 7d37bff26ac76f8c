"""explain.audit: sections, performance numbers, inputs it accepts, errors, model untouched."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from explain._core.tensors import infer_modality
from explain.auditing import Report, audit, expected_calibration_error, performance_summary
from explain.auditing._data import collect, pick_samples
from explain.auditing.sections import (
    CardSection,
    ExplanationsSection,
    Mistake,
    PerformanceSection,
    TrainingSection,
)
from explain.card import Modality
from explain.errors import DataMismatchError, InvalidInputError, InvalidTypeError
from explain.findings import Severity
from explain.quality import Verdict
from tests.fixtures.audit import XSS, synthetic_history, tiny_data, trained_mlp


def test_performance_summary_matches_hand_computed_values():
    # Arrange: 4 samples, 2 classes; predictions 0, 0, 1, 0 for labels 0, 1, 1, 0
    logits = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 3.0], [4.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 0])
    # Act
    perf = performance_summary(logits, labels, ["cat", "dog"])
    # Assert
    assert perf.accuracy == pytest.approx(0.75)
    assert perf.confusion == ((2, 0), (1, 1))
    cat, dog = perf.per_class
    assert cat.precision == pytest.approx(2 / 3) and cat.recall == 1.0
    assert dog.precision == 1.0 and dog.recall == 0.5 and dog.support == 2
    assert dog.f1 == pytest.approx(2 / 3)
    assert perf.mistakes == (Mistake(1, 1, 0, pytest.approx(1 / (1 + math.exp(-1)))),)
    assert perf.loss == pytest.approx(float(nn.functional.cross_entropy(logits, labels)))


def test_ece_is_zero_when_confidence_equals_accuracy_and_weighted_otherwise():
    conf = torch.tensor([0.75] * 4 + [0.95] * 2)
    ok = torch.tensor([True, True, True, False, False, False])
    ece, bins = expected_calibration_error(conf, ok, n_bins=10)
    # bin 0.7-0.8: |0.75 - 0.75| = 0; bin 0.9-1.0: |0 - 0.95| weighted 2/6
    assert ece == pytest.approx(2 / 6 * 0.95)
    assert [b.count for b in bins if b.count] == [4, 2]
    assert expected_calibration_error(torch.tensor([0.8] * 5),
                                      torch.tensor([1, 1, 1, 1, 0]).bool())[0] == pytest.approx(0, abs=1e-6)


def test_performance_summary_rejects_labels_out_of_range():
    with pytest.raises(DataMismatchError, match=r"Labels must lie in \[0, 1\]"):
        performance_summary(torch.zeros(2, 2), torch.tensor([0, 2]), ["a", "b"])


# ----------------------------------------------------------------------------- data handling


@pytest.mark.parametrize("kind", ["tuple", "dataset", "loader", "tensor_dataset"])
def test_collect_accepts_tuple_dataset_and_loader(kind):
    x, y = tiny_data(20)
    from zoo.data.base import TensorPairDataset
    data = {"tuple": (x, y), "dataset": TensorPairDataset(x, y),
            "loader": DataLoader(TensorDataset(x, y), batch_size=7),
            "tensor_dataset": TensorDataset(x, y)}[kind]
    got_x, got_y = collect(data)
    assert torch.equal(got_x, x) and torch.equal(got_y, y)


def test_collect_rejects_wrong_types_nan_and_length_mismatch():
    x, y = tiny_data(10)
    with pytest.raises(InvalidTypeError, match="audit 'data' must be a torch Dataset"):
        collect("data.csv")
    with pytest.raises(DataMismatchError, match="10 inputs but 9 labels"):
        collect((x, y[:9]))
    x[3, 1] = float("nan")
    with pytest.raises(InvalidInputError, match=r"NaN or inf \(samples \[3\]"):
        collect((x, y))


def test_infer_modality_from_dtype_and_rank():
    assert infer_modality(torch.zeros(2, 5, dtype=torch.long)) == Modality.TEXT
    assert infer_modality(torch.zeros(2, 1, 8, 8)) == Modality.IMAGE
    assert infer_modality(torch.zeros(2, 7, 3)) == Modality.SEQUENCE
    assert infer_modality(torch.zeros(2, 3)) == Modality.TABULAR
    with pytest.raises(InvalidInputError, match=r"Got shape \(2, 1, 2, 2, 2\) instead"):
        infer_modality(torch.zeros(2, 1, 2, 2, 2), owner="explain.audit")


def test_pick_samples_spreads_over_classes():
    labels = torch.tensor([0] * 50 + [1] * 3 + [2] * 40)
    picked = pick_samples(labels, 7)
    classes = [int(labels[i]) for i in picked]
    assert len(set(picked)) == 7
    assert sorted(classes) == [0, 0, 0, 1, 1, 2, 2]
    assert pick_samples(labels, 7) == picked  # seeded


# ----------------------------------------------------------------------------- audit()


def test_audit_without_history_says_how_to_record_one():
    model, _ = trained_mlp(monitor=False)
    report = audit(model, tiny_data(), samples=0, checks=["non-finite", "overfitting"])
    training = report.section(TrainingSection)
    assert training.available is False
    assert "explain.TrainingMonitor(model)" in training.reason
    assert "history=mon.history" in training.reason
    assert report.section(ExplanationsSection).reason == "samples=0: no inputs were explained."
    assert {f.check for f in report.findings} == {"non-finite", "overfitting"}


def test_audit_reports_accuracy_card_and_training_sections():
    model, history = trained_mlp()
    x, y = tiny_data()
    report = audit(model, (x, y), history=history, class_names=["a", XSS, "c"], samples=3,
                   methods=["saliency"], trust_metrics=("faithfulness",))
    perf = report.section(PerformanceSection)
    expected = float((model(x).argmax(1) == y).float().mean())
    assert perf.accuracy == pytest.approx(expected)
    assert perf.n == 90 and perf.class_names[1] == XSS
    assert sum(map(sum, perf.confusion)) == 90
    training = report.section(TrainingSection)
    assert training.available is True and training.history is not history  # a copy
    assert training.history.epochs["epoch"] == [1, 2, 3, 4]
    card = report.section(CardSection)
    assert card.parameters == 4 * 16 + 16 + 16 * 3 + 3
    assert [r.name for r in card.layers] == ["0", "2"]
    assert card.versions["torch"] == torch.__version__
    assert card.data == {"n": 90, "sample_shape": [4], "dtype": "torch.float32"}
    assert set(report.timings) == {"predict", "checks", "performance", "calibration", "baseline",
                                   "robustness", "shift", "explanations", "card"}
    assert report.findings == tuple(sorted(report.findings, key=lambda f: -f.severity.rank))


def test_audit_explains_samples_per_class_with_a_trust_verdict():
    pytest.importorskip("explain.attribution", reason="attribution part not installed")
    from explain import attribution
    if not hasattr(attribution, "attribute"):
        pytest.skip("explain.attribute not available yet")
    model, _ = trained_mlp(monitor=False)
    report = audit(model, tiny_data(), samples=3, methods=["integrated_gradients", "saliency"],
                   checks=["non-finite"])
    sec = report.section(ExplanationsSection)
    assert sec.available is True
    assert sorted(s.true for s in sec.samples) == [0, 1, 2]
    methods = {m.method: m for m in sec.methods}
    assert methods["saliency"].values.shape == (3, 4)  # the maps stay tensors for the figures
    assert methods["integrated_gradients"].error is None
    assert isinstance(methods["integrated_gradients"].verdict, Verdict)
    assert methods["integrated_gradients"].verdict is methods["integrated_gradients"].quality.verdict
    assert len(sec.agreement.matrix) == 2
    assert any(f.check == "explanation-trust" for f in report.findings)


def test_audit_leaves_a_train_mode_model_untouched():
    model, _ = trained_mlp(monitor=False)
    model.train()
    before = copy.deepcopy(model.state_dict())
    report = audit(model, tiny_data(), samples=0, checks=["non-finite"])
    assert model.training is True
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert report.section(PerformanceSection).n == 90


def test_audit_errors_name_the_input_and_the_fix():
    model, _ = trained_mlp(monitor=False)
    with pytest.raises(InvalidTypeError, match="audit 'model' must be a torch.nn.Module"):
        audit("model.pt", tiny_data())
    with pytest.raises(DataMismatchError, match="3 outputs but 2 class names"):
        audit(model, tiny_data(), class_names=["a", "b"], samples=0)
    with pytest.raises(DataMismatchError, match=r"could not take the data of explain.audit: "
                                                r"inputs of shape \[5\]"):
        audit(model, (torch.zeros(3, 5), torch.zeros(3, dtype=torch.long)), samples=0)
    with pytest.raises(InvalidInputError, match="'samples' parameter of audit must be an int >= 0"):
        audit(model, tiny_data(), samples=-1)


def test_report_verdict_is_the_worst_finding():
    model, _ = trained_mlp(monitor=False)
    from explain.monitor import History
    h = History(**synthetic_history())  # one non-finite gradient: the non-finite check fails
    report = audit(model, tiny_data(), history=h, samples=0, checks=["non-finite"])
    assert report.severity == Severity.FAIL
    assert report.verdict.headline == "1 problem needs attention: non-finite (fail)."
    assert isinstance(report, Report)


def test_explain_audit_is_callable_even_after_the_package_was_imported():
    import explain
    import explain.auditing  # noqa: F401  # importing the package must not shadow the function
    report = explain.audit(nn.Linear(4, 3), tiny_data(9), samples=0, checks=["non-finite"])
    assert isinstance(report, explain.Report)
    assert report.section(PerformanceSection).n == 9


def test_mistakes_keep_their_inputs_images_as_pixels_and_text_as_tokens():
    torch.manual_seed(0)
    # images: a model that always predicts class 1, so every class-0 image is a mistake
    image_model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    with torch.no_grad():
        image_model[1].weight.zero_()
        image_model[1].bias.copy_(torch.tensor([0.0, 2.0]))
    x = torch.rand(6, 1, 4, 4)
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    perf = audit(image_model, (x, y), samples=0, checks=[]).section(PerformanceSection)
    assert [m.index for m in perf.mistakes] == [0, 2, 4]
    assert torch.equal(perf.mistakes[0].input, x[0])
    # text: token ids decoded with `decode`, padding (id 0) dropped
    text_model = nn.Sequential(nn.Embedding(5, 2), nn.Flatten(), nn.Linear(12, 2))
    with torch.no_grad():
        text_model[2].weight.zero_()
        text_model[2].bias.copy_(torch.tensor([0.0, 2.0]))
    ids = torch.tensor([[2, 3, 4, 0, 0, 0], [3, 3, 0, 0, 0, 0]])
    perf = audit(text_model, (ids, torch.tensor([0, 1])), samples=0, checks=[],
                 decode=lambda toks: [["<pad>", "<unk>", "good", XSS, "film"][t] for t in toks]
                 ).section(PerformanceSection)
    assert perf.mistakes == (Mistake(0, 0, 1, pytest.approx(
        float(torch.softmax(torch.tensor([0.0, 2.0]), 0)[1])), text=f"good {XSS} film"),)


def test_default_methods_use_grad_cam_only_for_convolutional_image_models():
    from explain.auditing.explanations import default_methods
    from explain.card import Modality
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(144, 10))
    assert default_methods(Modality.IMAGE, mlp) == ("integrated_gradients", "saliency")
    assert default_methods(Modality.IMAGE, cnn) == ("integrated_gradients", "grad_cam")
    assert default_methods(Modality.TEXT, cnn) == ("integrated_gradients", "saliency")
