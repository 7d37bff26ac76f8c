"""``overfitting``: Prechelt's generalization loss, sustained, while the training loss falls.

Prechelt ("Early stopping - but when?", 1998) defines the generalization loss at epoch t as
``GL(t) = 100 (E_va(t) / E_opt(t) - 1)``, where ``E_opt(t)`` is the lowest validation loss up to
t. A GL above ``overfit_gl`` (5) for ``overfit_patience`` (3) consecutive epochs while the
training loss keeps falling (is no higher at their end than at the minimum; a rising training
loss is instability, see ``unstable-training``) is overfitting (WARN); with a relative train/validation accuracy gap
above deepchecks' 0.1 as well it is a FAIL. A gap without a validation-loss rise is an INFO
"generalization gap" (more data or regularization helps), not overfitting. The finding names the
epoch to stop at: the validation-loss minimum before the rise.
"""

from __future__ import annotations

import math
from typing import Any

from explain.checks.base import (
    Check,
    CheckContext,
    MissingInput,
    Onset,
    fmt,
    median,
    pct,
    register_check,
)
from explain.findings import Severity

__all__ = ["Overfitting", "generalization_loss"]


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def generalization_loss(val_loss: list[float | None]) -> list[float | None]:
    """Prechelt's ``GL(t) = 100 (E_va(t) / E_opt(t) - 1)`` per epoch (None where unknown).

    Examples
    --------
    >>> [None if g is None else round(g, 6) for g in generalization_loss([1.0, 0.8, 1.0, None, 0.4])]
    [0.0, 0.0, 25.0, None, 0.0]
    """
    out: list[float | None] = []
    best: float | None = None
    for v in val_loss:
        if v is None:
            out.append(None)
            continue
        best = v if best is None else min(best, v)
        out.append(100.0 * (v / best - 1.0) if best > 0 else None)
    return out


def _first_run(flags: list[bool], length: int) -> tuple[int | None, int]:
    """Start index of the first run of >= ``length`` consecutive true flags, and the longest
    run's length."""
    start, longest, run = None, 0, 0
    for i, f in enumerate(flags):
        run = run + 1 if f else 0
        longest = max(longest, run)
        if run >= length and start is None:
            start = i - run + 1
    return start, longest


@register_check("overfitting")
class Overfitting(Check):
    """Sustained generalization loss with a falling training loss; the accuracy gap grades it."""

    title = "Overfitting"
    thresholds = ("overfit_gl", "overfit_patience", "overfit_gap")

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
        numbers = [int(e) for e in list(epochs.get("epoch") or range(1, n + 1))[:n]]
        train = ([_num(v) for v in (epochs.get("train_loss") or [])] + [None] * n)[:n]
        patience = int(context.threshold("overfit_patience"))
        gl = generalization_loss(val)
        start, longest = _first_run([g is not None and g > context.threshold("overfit_gl")
                                     for g in gl], patience)
        upto = n if start is None else start  # the minimum before the rise: where to stop
        best = min((v, i) for i, v in enumerate(val[:upto]) if v is not None)[1] \
            if any(v is not None for v in val[:upto]) else 0
        span = [] if start is None else list(range(start, start + patience))
        falling = None
        if span and train[best] is not None and all(train[i] is not None for i in span):
            falling = train[span[-1]] <= train[best]  # type: ignore[operator]
        gap, kind, per_epoch = self._gap(epochs, n, patience)
        return {
            "epoch": numbers, "val_loss": val, "train_loss": train,
            "train_acc": [_num(v) for v in (epochs.get("train_acc") or [])][:n],
            "val_acc": [_num(v) for v in (epochs.get("val_acc") or [])][:n],
            "generalization_loss": gl, "max_gl": max((g for g in gl if g is not None),
                                                     default=0.0),
            "rise_epoch": None if start is None else numbers[start], "longest_rise": longest,
            "best_epoch": numbers[best], "min_val_loss": val[best],
            "train_loss_at_best": train[best],
            "train_loss_after": None if not span else train[span[-1]],
            "train_falling": falling, "gap": gap, "gap_kind": kind, "gap_per_epoch": per_epoch,
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

    def onset(self, evidence: dict[str, Any], context: CheckContext) -> Onset:
        if evidence["rise_epoch"] is not None:
            return Onset(epoch=evidence["rise_epoch"])
        t = context.threshold("overfit_gap")
        first = next((e for e, g in zip(evidence["epoch"], evidence["gap_per_epoch"])
                      if g is not None and g > t), None)
        return Onset(epoch=first)

    def grade(self, evidence: dict[str, Any], context: CheckContext) -> tuple[Severity, str, str]:
        gl_t, gap_t = context.threshold("overfit_gl"), context.threshold("overfit_gap")
        patience = int(context.threshold("overfit_patience"))
        best, gap, falling = evidence["best_epoch"], evidence["gap"], evidence["train_falling"]
        gapped = gap is not None and gap > gap_t
        gap_text = (f"the relative train/val {evidence['gap_kind']} gap is {fmt(gap)}"
                    if gap is not None else "no train/val gap could be computed")
        rise = (f"the generalization loss GL exceeded {fmt(gl_t)} for {patience} or more "
                f"epochs from epoch {evidence['rise_epoch']} (up to {fmt(evidence['max_gl'])}: "
                f"validation loss {pct(evidence['max_gl'] / 100)} above its minimum at epoch "
                f"{best})")
        stop = (f"Use early stopping at epoch {best} (the validation-loss minimum); regularize with "
                "L2 weight decay (or L1), dropout and data augmentation, or get more data.")
        if evidence["rise_epoch"] is not None and falling is not False:
            train = ("while the training loss did not rise "
                     f"({fmt(evidence['train_loss_at_best'])} -> "
                     f"{fmt(evidence['train_loss_after'])})" if falling
                     else "(the training loss was not logged)")
            if gapped:
                return (Severity.FAIL, f"Overfitting: {rise} {train}, and {gap_text} "
                        f"(> {fmt(gap_t)}); stop at epoch {best}.", stop)
            return (Severity.WARN, f"Overfitting: {rise} {train}; {gap_text} (<= {fmt(gap_t)}); "
                    f"stop at epoch {best}.", stop)
        if evidence["rise_epoch"] is not None:
            return (Severity.INFO, f"The validation loss rose ({rise}), but the training loss "
                    "did not fall meanwhile, so this is not overfitting; see unstable-training.",
                    "If the training loss rose too, lower the learning rate; otherwise watch "
                    "the validation set for a shift.")
        if gapped:
            return (Severity.INFO, f"Generalization gap: {gap_text} (> {fmt(gap_t)}), but the "
                    f"validation loss has not risen (GL above {fmt(gl_t)} for at most "
                    f"{evidence['longest_rise']} consecutive epochs, fewer than {patience}); "
                    "not overfitting.",
                    "More training data or regularization (L2, dropout, data augmentation) "
                    "would narrow the gap.")
        return (Severity.PASS, f"No overfitting: the generalization loss GL exceeded "
                f"{fmt(gl_t)} for at most {evidence['longest_rise']} consecutive epochs (fewer "
                f"than {patience}; lowest validation loss at epoch {best}), and {gap_text}.", "")
