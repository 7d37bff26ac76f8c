"""Performance numbers of a classifier from its logits: accuracy, per-class precision/recall,
confusion matrix, calibration (reliability bins and expected calibration error), and the most
confident mistakes. Pure tensor math; a typed :class:`PerformanceSection` out.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from explain._validation import check_int
from explain.auditing.sections import CalibrationBin, ClassMetrics, Mistake, PerformanceSection
from explain.errors import DataMismatchError, InvalidInputError

__all__ = ["performance_summary", "expected_calibration_error"]


def expected_calibration_error(confidence: torch.Tensor, correct: torch.Tensor,
                               n_bins: int = 15) -> tuple[float, list[CalibrationBin]]:
    """ECE (Guo et al. 2017) over ``n_bins`` equal-width confidence bins, and the bins.

    ECE = sum_b (n_b / n) * |accuracy_b - confidence_b|.

    Examples
    --------
    >>> conf = torch.tensor([0.9, 0.9, 0.6, 0.6])
    >>> ok = torch.tensor([True, False, True, True])
    >>> round(expected_calibration_error(conf, ok, n_bins=10)[0], 3)
    0.4
    """
    n_bins = check_int(n_bins, "n_bins", owner="expected_calibration_error", min=1)
    conf = confidence.double().flatten()
    ok = correct.double().flatten()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    idx = torch.clamp(torch.bucketize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    bins, ece, n = [], 0.0, max(int(conf.numel()), 1)
    for b in range(n_bins):
        mask = idx == b
        count = int(mask.sum())
        acc = float(ok[mask].mean()) if count else None
        mean_conf = float(conf[mask].mean()) if count else None
        if count:
            ece += count / n * abs(acc - mean_conf)  # type: ignore[operator]
        bins.append(CalibrationBin(float(edges[b]), float(edges[b + 1]), count, acc, mean_conf))
    return ece, bins


def performance_summary(logits: torch.Tensor, labels: torch.Tensor,
                        class_names: Sequence[str], *, n_bins: int = 15,
                        n_mistakes: int = 10) -> PerformanceSection:
    """Accuracy, per-class precision/recall/F1, confusion matrix, calibration and mistakes.

    Parameters
    ----------
    logits : [n, classes] model outputs.
    labels : [n] int64 true classes.
    class_names : one name per class.

    Returns
    -------
    PerformanceSection
        ``n``, ``accuracy``, ``loss`` (mean cross-entropy), ``class_names``, ``confusion``
        (rows true, columns predicted), ``per_class`` (:class:`ClassMetrics`), ``ece`` and
        ``bins`` (:class:`CalibrationBin`), ``mistakes`` (the ``n_mistakes`` most confident wrong
        predictions, :class:`Mistake`).

    Examples
    --------
    >>> perf = performance_summary(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]),
    ...                            ["cat", "dog"])
    >>> perf.accuracy, perf.confusion, perf.mistakes[0].index
    (0.5, ((1, 1), (0, 0)), 1)
    """
    if logits.ndim != 2 or labels.ndim != 1 or logits.shape[0] != labels.shape[0]:
        raise DataMismatchError(
            f"performance_summary needs logits [n, classes] and labels [n]. Got logits "
            f"{list(logits.shape)} and labels {list(labels.shape)} instead.")
    if logits.shape[0] == 0:
        raise InvalidInputError("performance_summary needs at least one labelled sample. Got 0.")
    k = logits.shape[1]
    if len(class_names) != k:
        raise DataMismatchError(f"The model has {k} outputs but {len(class_names)} class names "
                                f"were given. Pass class_names with {k} entries.")
    labels = labels.long()
    if int(labels.min()) < 0 or int(labels.max()) >= k:
        raise DataMismatchError(f"Labels must lie in [0, {k - 1}] for a model with {k} outputs. "
                                f"Got labels from {int(labels.min())} to {int(labels.max())}.")
    logits = logits.double()
    probs = torch.softmax(logits, dim=1)
    conf, pred = probs.max(dim=1)
    correct = pred == labels
    confusion = torch.zeros(k, k, dtype=torch.long)
    confusion.index_put_((labels, pred), torch.ones_like(labels), accumulate=True)
    tp = confusion.diag().double()
    pred_count, support = confusion.sum(0).double(), confusion.sum(1).double()
    per_class = []
    for c, name in enumerate(class_names):
        p = float(tp[c] / pred_count[c]) if pred_count[c] > 0 else None
        r = float(tp[c] / support[c]) if support[c] > 0 else None
        f1 = 2 * p * r / (p + r) if p is not None and r is not None and p + r > 0 else None
        per_class.append(ClassMetrics(str(name), p, r, f1, int(support[c])))
    ece, bins = expected_calibration_error(conf, correct, n_bins)
    wrong = torch.nonzero(~correct).flatten()
    order = wrong[torch.argsort(conf[wrong], descending=True)][:n_mistakes]
    mistakes = [Mistake(int(i), int(labels[i]), int(pred[i]), float(conf[i])) for i in order]
    loss = float(torch.nn.functional.cross_entropy(logits, labels))
    return PerformanceSection(
        n=int(labels.numel()), accuracy=float(correct.double().mean()), loss=loss,
        class_names=tuple(str(c) for c in class_names),
        confusion=tuple(tuple(r) for r in confusion.tolist()), per_class=tuple(per_class),
        ece=ece, bins=tuple(bins), mistakes=tuple(mistakes))
