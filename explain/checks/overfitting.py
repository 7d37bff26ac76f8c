"""``overfitting``: validation loss rising from its minimum *and* a train/validation gap.

Either signal alone is not a verdict: a regularized, early-stopped CNN measured here keeps a
relative gap of 0.08-0.10, and validation loss wobbles by a few percent on small validation sets.
Together they are, and the finding says where to stop (the epoch of minimum validation loss).
"""

from __future__ import annotations

import math
from typing import Any

from explain.checks.base import (
    Check,
    CheckContext,
    MissingInput,
    fmt,
    median,
    pct,
    register_check,
)
from explain.findings import Severity

__all__ = ["Overfitting"]


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


@register_check("overfitting")
class Overfitting(Check):
    """Compare the validation loss with its minimum and the train metric with the validation one."""

    title = "Overfitting"
    thresholds = ("overfit_gap", "overfit_val_rise", "overfit_patience", "overfit_fail_gap")

    def compute(self, context: CheckContext) -> dict[str, Any]:
        epochs = getattr(context.history, "epochs", None) or {}
        val = [_num(v) for v in epochs.get("val_loss") or []]
        if sum(v is not None for v in val) < 2:
            raise MissingInput(
                "The overfitting check needs a validation loss for at least 2 epochs; "
                f"{sum(v is not None for v in val)} were logged.",
                "Pass val_loss (and train_acc/val_acc) to mon.log_epoch(...) at the end of every "
                "epoch, or train with zoo.train(...), which does.")
        n = len(val)
        numbers = list(epochs.get("epoch") or range(1, n + 1))[:n]
        best = min((v, i) for i, v in enumerate(val) if v is not None)[1]
        low = val[best]
        rise_level = low + context.threshold("overfit_val_rise") * abs(low)
        above = sum(1 for v in val[best + 1:] if v is not None and v >= rise_level)
        last = next(v for v in reversed(val) if v is not None)
        gap, kind, per_epoch = self._gap(epochs, n, int(context.threshold("overfit_patience")))
        return {
            "epoch": numbers, "val_loss": val,
            "train_loss": [_num(v) for v in (epochs.get("train_loss") or [])][:n],
            "train_acc": [_num(v) for v in (epochs.get("train_acc") or [])][:n],
            "val_acc": [_num(v) for v in (epochs.get("val_acc") or [])][:n],
            "best_epoch": numbers[best], "min_val_loss": low, "final_val_loss": last,
            "val_rise": (last - low) / abs(low) if low else 0.0,
            "max_val_rise": (max(v for v in val[best:] if v is not None) - low) / abs(low)
            if low else 0.0,
            "epochs_above": above, "gap": gap, "gap_kind": kind, "gap_per_epoch": per_epoch,
        }

    @staticmethod
    def _gap(epochs: dict, n: int, k: int) -> tuple[float | None, str, list]:
        """Relative gap per epoch and its median over the last ``k`` epochs with a value."""
        ta, va = epochs.get("train_acc") or [], epochs.get("val_acc") or []
        per_epoch: list[float | None] = []
        kind = "accuracy"
        if any(_num(a) is not None and _num(b) is not None for a, b in zip(ta, va)):
            for a, b in zip(list(ta)[:n], list(va)[:n]):
                a, b = _num(a), _num(b)
                per_epoch.append((a - b) / a if a is not None and b is not None and a > 0
                                 else None)
        else:  # no accuracy: relative loss gap (val - train) / val
            kind = "loss"
            tl, vl = epochs.get("train_loss") or [], epochs.get("val_loss") or []
            for a, b in zip(list(tl)[:n], list(vl)[:n]):
                a, b = _num(a), _num(b)
                per_epoch.append((b - a) / b if a is not None and b is not None and b > 0
                                 else None)
        known = [g for g in per_epoch if g is not None]
        return (median(known[-k:]) if known else None), kind, per_epoch

    def grade(self, evidence: dict[str, Any], context: CheckContext) -> tuple[Severity, str, str]:
        rise_t = context.threshold("overfit_val_rise")
        patience = int(context.threshold("overfit_patience"))
        gap_t = context.threshold("overfit_gap")
        best, above, gap = evidence["best_epoch"], evidence["epochs_above"], evidence["gap"]
        rising = above >= patience
        gapped = gap is not None and gap > gap_t
        gap_text = (f"the relative train/val {evidence['gap_kind']} gap is {fmt(gap)}"
                    if gap is not None else "no train/val gap could be computed")
        rise_text = (f"validation loss rose up to {pct(evidence['max_val_rise'])} above its "
                     f"minimum at epoch {best} ({pct(evidence['val_rise'])} at the end) and was "
                     f">= {pct(rise_t)} above it in {above} later epochs")
        stop = (f"Use early stopping at epoch {best} (the validation-loss minimum); regularize with "
                "L2 weight decay (or L1), dropout and data augmentation, or get more data.")
        if rising and gapped:
            severity = Severity.FAIL if gap > context.threshold("overfit_fail_gap") \
                else Severity.WARN
            return (severity, f"Overfitting: {rise_text}, and {gap_text} (> {fmt(gap_t)}); "
                    f"stop at epoch {best}.", stop)
        if rising:
            return (Severity.INFO, f"The {rise_text}, but {gap_text} (<= {fmt(gap_t)}); "
                    "not overfitting yet.",
                    f"Consider early stopping at epoch {best} (the validation-loss minimum).")
        if gapped:
            return (Severity.INFO, f"{gap_text[0].upper()}{gap_text[1:]} (> {fmt(gap_t)}), but validation loss has "
                    f"not been >= {pct(rise_t)} above its minimum (epoch {best}) in "
                    f"{patience} later epochs; not overfitting yet.",
                    "Watch the validation loss; if it starts rising, use early stopping and "
                    "regularize (L2, dropout, data augmentation).")
        return (Severity.PASS, f"No overfitting: validation loss is within {pct(rise_t)} of its "
                f"minimum (epoch {best}) or rose only briefly, and {gap_text}.", "")
