"""benchmarks/attribution.py's pure helpers: the limit each method is held to, the captum batch
values searched, and how a row is printed (no timings are asserted)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import _attribution_limits as lim  # noqa: E402
import _attribution_rows as rows  # noqa: E402


class _Card:
    def __init__(self, modality: str) -> None:
        from explain.card import Modality
        self.modality, self.layers = Modality(modality), {}


def _image_model() -> nn.Module:
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(2 * 28 * 28, 3)).eval()
    model.card = _Card("image")
    return model


def test_perturbation_methods_are_held_to_the_forward_limit_and_gradient_methods_to_fwd_bwd():
    kinds = {m: lim.pass_kind(m) for m in ("occlusion", "feature_ablation", "saliency",
                                            "gradient_shap", "smoothgrad", "deeplift",
                                            "integrated_gradients")}
    assert kinds == {"occlusion": "forward", "feature_ablation": "forward",
                     "saliency": "forward+backward", "gradient_shap": "forward+backward",
                     "smoothgrad": lim.NOISY, "deeplift": "forward+backward",
                     "integrated_gradients": "forward+backward"}


def test_the_limit_counts_the_model_evaluations_of_the_method_that_ran():
    model, x = _image_model(), torch.zeros(4, 1, 28, 28)
    evals = {m: rows.evaluations(m, model, x, dict(rows.FAST.get(m, {}), n_steps=50))
             for m in ("saliency", "gradient_shap", "smoothgrad", "deeplift",
                       "integrated_gradients", "occlusion")}
    # occlusion: 4x4 patches at stride 2 over 28x28 -> 13 x 13 windows, plus the unoccluded pass
    assert evals == {"saliency": 1, "gradient_shap": 16, "smoothgrad": 16, "deeplift": 2,
                     "integrated_gradients": 50, "occlusion": 1 + 13 * 13}


@pytest.mark.parametrize("backward", [True, False])
def test_a_limit_job_pushes_exactly_the_rows_asked_for(backward):
    model, x = _image_model(), torch.randn(8, 1, 28, 28)
    seen: list[int] = []
    run, size, _ = lim.limit_job(model, x, torch.zeros(8, dtype=torch.long), job_rows=64,
                                 backward=backward, sizes=(16, 32))
    model[0].register_forward_pre_hook(lambda _m, i: seen.append(i[0].shape[0]))
    run(70)
    # as many passes as full ones of the best size take, as equal as possible
    assert sum(seen) == 70 and len(seen) == -(-70 // size) and max(seen) <= size
    assert seen == {16: [14] * 5, 32: [24, 23, 23]}[size]


def test_best_fixed_candidates_are_distinct_per_pass_multiples_in_captums_unit():
    assert lim.candidates("integrated_gradients", 64, 50) == [
        (32, 1), (128, 2), (256, 4), (512, 8), (1024, 16), (2048, 32), (4096, 50)]
    assert lim.candidates("smoothgrad", 64, 16) == [(1, 1), (2, 2), (4, 4), (8, 8), (16, 16)]
    assert lim.candidates("occlusion", 64, 169) == [(k, k) for k in (1, 2, 4, 8, 16, 32, 64)]
    assert lim.candidates("gradient_shap", 64, 16) == lim.candidates("saliency", 64, 1) == []


def test_a_row_prints_paired_ratios_with_their_spread_and_the_method_that_ran():
    row = rows.MethodRow("rnn", "deeplift", "integrated_gradients", "forward+backward", 3200,
                         first=(0.4, 0.4), ours=(0.2, 0.4), limit=(0.1, 0.3),
                         captum=(0.02, 0.02), best_label="no batch option", note="why")
    line = rows.format_row(row)
    assert rows.paired(row.limit, row.ours) == pytest.approx((0.625, 0.5, 0.75))
    assert line.split() == [
        "rnn", "deeplift", "->", "integrated_gradients", "1.33", "0.300", "[0.200-0.400]",
        "f+b", "0.200", "[0.100-0.300]", "0.62", "[0.50-0.75]", "0.020", "[0.020-0.020]",
        "0.07", "[0.05-0.10]", "no", "batch", "option", "(why)"]


def test_occlusion_in_captum_uses_ours_windows():
    model, x = _image_model(), torch.zeros(2, 1, 28, 28)
    assert lim.occlusion_windows(model, x) == ((1, 4, 4), (1, 2, 2))
    assert lim.occlusion_windows(model, torch.zeros(2, 9, dtype=torch.long)) == ((1,), (1,))


@pytest.mark.parametrize("method, value", [
    ("saliency", None), ("gradient_shap", None), ("smoothgrad", 4), ("deeplift", None),
    ("occlusion", 8), ("integrated_gradients", 32)])
def test_captum_is_called_on_the_same_job_with_the_batch_value_given(method, value):
    torch.manual_seed(0)
    model, x = _image_model(), torch.randn(3, 1, 28, 28)
    options = dict(rows.FAST.get(method, {}), n_steps=4)
    out = lim.captum_call(method, model, x, torch.tensor([0, 1, 2]), options, value)()
    values = out[0] if isinstance(out, tuple) else out
    assert values.shape == x.shape and bool(torch.isfinite(values).all())
    assert float(values.abs().sum()) > 0


class _Sin(nn.Module):
    def __init__(self, functional: bool) -> None:
        super().__init__()
        self.fc, self.act, self.functional = nn.Linear(4, 3), nn.ReLU(), functional
        self.card = _Card("tabular")

    def forward(self, x):
        return torch.sin(3 * self.fc(x)) if self.functional else self.act(self.fc(x))


def test_captums_deeplift_completeness_error_is_zero_under_its_rules_and_large_outside():
    torch.manual_seed(0)
    x, t = torch.randn(16, 4), torch.zeros(16, dtype=torch.long)
    assert lim.completeness_error(_Sin(False).eval(), x, t) < 1e-4
    assert lim.completeness_error(_Sin(True).eval(), x, t) > 0.05


def test_smoothgrads_limit_runs_noisy_copies_at_its_spread_of_each_samples_range():
    x = torch.tensor([[0.0, 1.0, 2.0, 3.0], [5.0, 5.0, 5.0, 5.0]]).repeat(500, 1)

    noisy = lim.noisy_copies(x)

    noise = (noisy - x).view(500, 2, 4)
    # each sample's noise: N(0, 0.15 x its own max - min); a constant sample's N(0, 0.15)
    assert abs(float(noise[:, 0].std()) - lim.NOISE_SPREAD * 3.0) < 0.02
    assert abs(float(noise[:, 1].std()) - lim.NOISE_SPREAD) < 0.01
    assert torch.equal(lim.noisy_copies(x), noisy)      # a fixed generator: the same rows


def test_the_noisy_limit_keeps_the_padding_of_padded_sequences():
    x = torch.zeros(2, 5, 3)
    x[0, :2], x[1, :4] = 1.0, torch.arange(12.0).view(4, 3)

    noisy = lim.noisy_copies(x)

    assert torch.equal(noisy[0, 2:], torch.zeros(3, 3)) and torch.equal(noisy[1, 4:],
                                                                        torch.zeros(1, 3))
    assert bool((noisy[:, :2] != x[:, :2]).all())


def test_flops_per_row_counts_the_products_of_a_limit_row_and_refuses_fused_kernels():
    linear, target = nn.Linear(10, 3), torch.zeros(4, dtype=torch.long)
    # forward 2 x 10 x 3; backward to the input only: the input's gradient, no weight gradient
    assert lim.flops_per_row(linear, torch.randn(4, 10), target, backward=False) == 60
    assert lim.flops_per_row(linear, torch.randn(4, 10), target) == 120
    conv = _image_model()   # 2 x 9 x 2 x 784 (conv) + 2 x 1568 x 3 (linear), forward
    assert lim.flops_per_row(conv, torch.randn(4, 1, 28, 28), target, backward=False) == \
        2 * 9 * 2 * 784 + 2 * 1568 * 3

    class _LSTM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm, self.head = nn.LSTM(3, 8, batch_first=True), nn.Linear(8, 2)

        def forward(self, x):
            return self.head(self.lstm(x)[0][:, -1])

    if not torch.backends.mkldnn.is_available():
        pytest.skip("this torch runs an LSTM as separate products (no oneDNN kernel)")
    # oneDNN's fused LSTM holds the products: a count would be the head's alone
    assert lim.flops_per_row(_LSTM().eval(), torch.randn(4, 5, 3), target) is None
    assert "not counted" in lim.compute_share(_LSTM().eval(), torch.randn(4, 5, 3), target,
                                              True, 100.0)


def test_the_cache_knee_is_the_last_size_at_cache_speed_before_the_first_slow_one():
    import _cache_speed as cs

    mib = 2**20
    flat = {s * mib: 1.0 for s in (1, 2, 4, 8, 16)}
    assert cs.knee(flat) == 16 * mib                       # never slower: the largest size
    step = {mib: 1.0, 2 * mib: 1.1, 4 * mib: 1.4, 8 * mib: 2.0, 16 * mib: 2.4}
    assert cs.knee(step) == 4 * mib                        # 1.4 <= 1.5 x 1.1, 2.0 is past it
    # a fast size after a slow one does not count (the sizes stop at the first slow one)
    assert cs.knee({**step, 16 * mib: 1.0}) == 4 * mib
    assert cs.knee(step, slower=2.0) == 8 * mib
    assert cs.knee({mib: 5.0, 2 * mib: 1.0, 4 * mib: 1.0, 8 * mib: 1.0}) == 8 * mib  # median


def test_the_stream_probe_times_every_size_and_restores_the_threads():
    import _cache_speed as cs

    before = torch.get_num_threads()
    sizes = (2**16, 2**18)
    per_byte = cs.stream_per_byte(1, sizes=sizes, repeats=2)
    assert set(per_byte) == set(sizes) and all(v > 0 for v in per_byte.values())
    assert torch.get_num_threads() == before
