"""Calibration measured and repaired: ECE with a bootstrap interval, MCE, NLL, and temperature
scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks").

Temperature scaling divides the logits by one scalar ``T > 0`` fitted by minimising the NLL on
held-out data; ``argmax`` is unchanged, so accuracy is too.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from explain._core import tensors
from explain._validation import check_int
from explain.auditing import _data
from explain.auditing.performance import expected_calibration_error
from explain.auditing.sections.calibration import CalibrationSection
from explain.errors import DataMismatchError, InvalidInputError, InvalidTypeError

__all__ = ["fit_temperature", "bootstrap_ece", "calibration_section", "calibrate",
           "TemperatureScaled"]

FIT_ON_VAL = "validation data"
FIT_ON_CROSS = "a 2-fold cross-fit of the evaluation data (no validation data was given)"


def _labelled(logits: torch.Tensor, labels: torch.Tensor, owner: str) -> None:
    if logits.ndim != 2 or labels.ndim != 1 or logits.shape[0] != labels.shape[0]:
        raise DataMismatchError(f"{owner} needs logits [n, classes] and labels [n]. Got logits "
                                f"{list(logits.shape)} and labels {list(labels.shape)} instead.")
    if logits.shape[0] < 2:
        raise InvalidInputError(f"{owner} needs at least 2 labelled samples. Got "
                                f"{logits.shape[0]}.")


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, *, max_iter: int = 100) -> float:
    """The temperature ``T`` minimising the NLL of ``softmax(logits / T)`` (LBFGS on ``log T``).

    Examples
    --------
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> y = torch.randint(0, 3, (400,))
    >>> clean = torch.nn.functional.one_hot(y, 3).double() * 2 + torch.randn(400, 3)
    >>> round(fit_temperature(clean * 4, y) / fit_temperature(clean, y), 1)
    4.0
    """
    _labelled(logits, labels, "fit_temperature")
    z, y = logits.detach().double().cpu(), labels.detach().long().cpu()
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    t = float(log_t.detach().exp())
    return t if math.isfinite(t) and t > 0 else 1.0


def bootstrap_ece(confidence: torch.Tensor, correct: torch.Tensor, n_bins: int = 15, *,
                  n_boot: int = 200, seed: int = 0) -> tuple[float, float]:
    """The 95% percentile bootstrap interval of the ECE (resampling the samples).

    Per resample, ECE = sum over bins of |correct_b - confidence_b| / n (sums over the bin).
    """
    conf, ok = confidence.double().flatten(), correct.double().flatten()
    n = conf.numel()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    idx = torch.clamp(torch.bucketize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    g = torch.Generator().manual_seed(seed)
    draw = torch.randint(0, n, (n_boot, n), generator=g)  # [boot, n]
    slot = (torch.arange(n_boot)[:, None] * n_bins + idx[draw]).flatten()
    gap = torch.bincount(slot, (ok[draw] - conf[draw]).flatten(), minlength=n_boot * n_bins)
    eces = gap.view(n_boot, n_bins).abs().sum(1) / n
    lo, hi = torch.quantile(eces, torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    return float(lo), float(hi)


def _stats(logits: torch.Tensor, labels: torch.Tensor, n_bins: int) -> dict[str, Any]:
    probs = torch.softmax(logits.double(), 1)
    conf, pred = probs.max(1)
    ok = pred == labels
    ece, bins = expected_calibration_error(conf, ok, n_bins)
    gaps = [abs(b.accuracy - b.confidence) for b in bins
            if b.accuracy is not None and b.confidence is not None]
    return {"ece": ece, "bins": tuple(bins), "mce": max(gaps, default=0.0),
            "nll": float(nn.functional.cross_entropy(logits.double(), labels)),
            "accuracy": float(ok.double().mean()), "confidence": float(conf.mean()),
            "conf": conf, "ok": ok}


def _cross_fit(logits: torch.Tensor, labels: torch.Tensor, seed: int) -> torch.Tensor:
    """Logits scaled by a temperature fitted on the *other* half (2-fold)."""
    order = torch.randperm(labels.numel(), generator=torch.Generator().manual_seed(seed))
    halves = (order[: labels.numel() // 2], order[labels.numel() // 2:])
    out = logits.double().clone()
    for fit, apply in (halves, halves[::-1]):
        out[apply] = logits[apply].double() / fit_temperature(logits[fit], labels[fit])
    return out


def calibration_section(logits: torch.Tensor, labels: torch.Tensor,
                        val_logits: torch.Tensor | None = None,
                        val_labels: torch.Tensor | None = None, *, n_bins: int = 15,
                        n_boot: int = 200, seed: int = 0) -> CalibrationSection:
    """Measure calibration on ``(logits, labels)``, and again after temperature scaling.

    The temperature is fitted on ``(val_logits, val_labels)``; without them, on each half of
    the evaluation data and applied to the other half (so no sample is scored with a
    temperature fitted on itself).
    """
    _labelled(logits, labels, "calibration_section")
    n_bins = check_int(n_bins, "n_bins", owner="calibration_section", min=1)
    labels = labels.long()
    before = _stats(logits, labels, n_bins)
    lo, hi = bootstrap_ece(before["conf"], before["ok"], n_bins, n_boot=n_boot, seed=seed)
    if val_logits is not None and val_labels is not None and val_labels.numel() >= 2:
        temperature = fit_temperature(val_logits, val_labels)
        scaled, fit_on = logits.double() / temperature, FIT_ON_VAL
    else:
        temperature = fit_temperature(logits, labels)
        scaled, fit_on = _cross_fit(logits, labels, seed), FIT_ON_CROSS
    after = _stats(scaled, labels, n_bins)
    return CalibrationSection(
        n=int(labels.numel()), n_bins=n_bins, accuracy=before["accuracy"],
        confidence=before["confidence"], ece=before["ece"], ece_low=lo, ece_high=hi,
        mce=before["mce"], nll=before["nll"], bins=before["bins"], temperature=temperature,
        fit_on=fit_on, ece_after=after["ece"], mce_after=after["mce"], nll_after=after["nll"],
        accuracy_after=after["accuracy"], bins_after=after["bins"])


class TemperatureScaled(nn.Module):
    """``model`` with its logits divided by a fitted ``temperature`` (predictions unchanged).

    Attributes
    ----------
    model : the wrapped model.  temperature : the fitted ``T`` (a buffer, saved with the weights).
    """

    def __init__(self, model: nn.Module, temperature: float) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("temperature", torch.tensor(float(temperature)))
        self.card = getattr(model, "card", None)

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        out = self.model(*args, **kwargs)
        logits = out[0] if isinstance(out, (tuple, list)) else out
        return logits / self.temperature


def calibrate(model: nn.Module, val_data: Any, *, max_samples: int = 10_000) -> TemperatureScaled:
    """Fit a temperature on validation data and return the temperature-scaled model.

    Parameters
    ----------
    model : a classifier returning logits ``[batch, classes]`` (not modified).
    val_data : labelled held-out data (Dataset, DataLoader or ``(inputs, labels)``) that the
        model was not trained on.
    max_samples : use at most this many samples of ``val_data``.

    Returns
    -------
    TemperatureScaled
        ``model(x) / T``: same predictions, so the same accuracy; probabilities with lower NLL.

    Examples
    --------
    >>> net = torch.nn.Linear(4, 3)
    >>> x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    >>> scaled = calibrate(net, (x, y))
    >>> bool((scaled(x).argmax(1) == net(x).argmax(1)).all()), scaled.temperature.item() > 0
    (True, True)
    """
    if not isinstance(model, nn.Module):
        raise InvalidTypeError(f"calibrate 'model' must be a torch.nn.Module. Got "
                               f"{type(model).__name__} instead.")
    x, y = _data.collect(val_data, check_int(max_samples, "max_samples", owner="calibrate",
                                             min=2))
    if y is None:
        raise InvalidInputError("calibrate 'val_data' must be labelled: pass (inputs, labels) "
                                "or a Dataset of (input, label) pairs.")
    logits = tensors.predict(tensors.eval_copy(model), x, owner="explain.calibrate")
    return TemperatureScaled(model, fit_temperature(logits, y))
