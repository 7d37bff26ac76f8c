"""``overfitting``: Prechelt's generalization loss, sustained, once training has stopped paying.

Prechelt ("Early stopping - but when?", 1998) defines the generalization loss at epoch t as
``GL(t) = 100 (E_va(t) / E_opt(t) - 1)``, where ``E_opt(t)`` is the lowest validation loss up to
t, and the training progress over a strip of the last k epochs as
``P_k(t) = 1000 (sum E_tr / (k min E_tr) - 1)`` (per mille by which the strip's mean training loss
exceeds its minimum). His PQ criterion stops when ``PQ(t) = GL(t) / P_k(t)`` exceeds alpha: while
the training loss still falls fast, a rise of the validation loss is likely to be repaired ("we
assume that often overfitting does not begin until the error decreases only slowly").

Overfitting (WARN) is a GL above ``overfit_gl`` (5) for ``overfit_patience`` (3) consecutive
epochs whose last epoch has ``PQ > overfit_pq`` (1, k = ``overfit_strip`` = 5), while the
training loss is no higher than at the validation minimum (a rising training loss is instability,
see ``unstable-training``); without a logged training loss, GL alone decides. With a relative
train/validation accuracy gap above deepchecks' 0.1 as well it is a FAIL. A sustained GL while
training still progresses fast (PQ <= 1) is an INFO; a gap without a validation-loss rise is an
INFO "generalization gap" (more data or regularization helps), not overfitting. The finding names
the epoch to stop at: the validation-loss minimum before the rise.

A rise the run repaired is an INFO, not overfitting: when the median GL over the last
``overfit_patience`` epochs is back at or below ``overfit_gl``, the validation loss returned to
within the threshold of its minimum (or set a new one). Prechelt's criteria stop a run online
and cannot know that; an audit of a finished run can. An RNN that barely learns (vowels,
RMSprop, 20% accuracy) scatters its validation loss by 5-10% from epoch to epoch: one low epoch
(1.663) made GL exceed 5 for four epochs, after which the loss came back to 1.674 twice.
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

__all__ = ["Overfitting", "generalization_loss", "training_progress"]


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


def training_progress(train_loss: list[float | None], k: int) -> list[float | None]:
    """Prechelt's ``P_k(t) = 1000 (sum E_tr / (k min E_tr) - 1)`` over the strip of the last
    ``k`` epochs up to t (the known losses among them; fewer than 2: None).

    Examples
    --------
    >>> [None if p is None else round(p, 3) for p in training_progress([2.0, 1.0, 1.0, 1.0], 2)]
    [None, 500.0, 0.0, 0.0]
    """
    out: list[float | None] = []
    for t in range(len(train_loss)):
        strip = [v for v in train_loss[max(0, t - k + 1):t + 1] if v is not None]
        low = min(strip, default=0.0)
        out.append(1000.0 * (sum(strip) / (len(strip) * low) - 1.0)
                   if len(strip) >= 2 and low > 0 else None)
    return out


def progress_quotient(gl: list[float | None],
                      progress: list[float | None]) -> list[float | None]:
    """``PQ(t) = GL(t) / P_k(t)``; infinite where the training loss did not move at all."""
    return [None if g is None or p is None else (g / p if p > 0 else math.inf if g > 0 else 0.0)
            for g, p in zip(gl, progress)]


def _first_rise(flags: list[bool], length: int,
                ready: list[bool]) -> tuple[int | None, int | None]:
    """The first epoch that ends >= ``length`` consecutive true flags and at which ``ready``
    holds: (the start of its run, that epoch), or (None, None)."""
    run = 0
    for i, f in enumerate(flags):
        run = run + 1 if f else 0
        if run >= length and ready[i]:
            return i - run + 1, i
    return None, None


def _runs(flags: list[bool]) -> list[int]:
    """Per index, the number of consecutive true flags ending there."""
    out, run = [], 0
    for f in flags:
        run = run + 1 if f else 0
        out.append(run)
    return out


def _longest(flags: list[bool]) -> int:
    """Length of the longest run of consecutive true flags."""
    return max(_runs(flags), default=0)


@register_check("overfitting")
class Overfitting(Check):
    """Sustained generalization loss with a falling training loss; the accuracy gap grades it."""

    title = "Overfitting"
    thresholds = ("overfit_gl", "overfit_patience", "overfit_pq", "overfit_strip", "overfit_gap")

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
        gap, kind, per_epoch = self._gap(epochs, n, patience)
        start, end, by, pq, flags = self._rise(gl, train, gap, context)
        sustained = _first_rise(flags, patience, [True] * n)[0]  # GL alone: a slower rise
        upto = n if start is None else start  # the minimum before the rise: where to stop
        best = min((v, i) for i, v in enumerate(val[:upto]) if v is not None)[1] \
            if any(v is not None for v in val[:upto]) else 0
        falling = None
        if end is not None and train[best] is not None and train[end] is not None:
            falling = train[end] <= train[best]  # type: ignore[operator]
        in_rises = [q for q, r in zip(pq, _runs(flags)) if r >= patience and q is not None]
        last = [g for g in gl if g is not None][-patience:]
        final = median(last) if last else None  # GL at the end: is the rise still standing?
        return {
            "epoch": numbers, "val_loss": val, "train_loss": train,
            "train_acc": [_num(v) for v in (epochs.get("train_acc") or [])][:n],
            "val_acc": [_num(v) for v in (epochs.get("val_acc") or [])][:n],
            "generalization_loss": gl, "max_gl": max((g for g in gl if g is not None),
                                                     default=0.0),
            "rise_epoch": None if start is None else numbers[start],
            "longest_rise": _longest(flags), "rise_by": by,
            "progress_quotient": pq, "pq_epoch": None if end is None else numbers[end],
            "pq_at_rise": None if end is None or by != "pq" else pq[end],
            "max_pq_in_rise": max(in_rises, default=None),
            "gl_rise_epoch": None if sustained is None else numbers[sustained],
            "best_epoch": numbers[best], "min_val_loss": val[best],
            "train_loss_at_best": train[best],
            "train_loss_after": None if end is None else train[end],
            "train_falling": falling, "gap": gap, "gap_kind": kind, "gap_per_epoch": per_epoch,
            "final_gl": final, "repaired": start is not None and final is not None
            and final <= context.threshold("overfit_gl"),
        }

    @staticmethod
    def _rise(gl: list[float | None], train: list[float | None], gap: float | None,
              context: CheckContext) -> tuple[int | None, int | None, str | None, list, list]:
        """(start, end, by, PQ per epoch, GL flags) of the first rise that counts: a sustained
        GL whose last epoch has PQ above overfit_pq (``by="pq"``); with no PQ crossing, the
        first sustained GL when the accuracy gap exceeds overfit_gap (``"gap"``: the training
        progress does not carry over to validation) or when no training loss was logged
        (``"gl"``)."""
        patience = int(context.threshold("overfit_patience"))
        pq = progress_quotient(gl, training_progress(train, int(context.threshold(
            "overfit_strip"))))
        flags = [g is not None and g > context.threshold("overfit_gl") for g in gl]
        start, end = _first_rise(flags, patience, [
            q is not None and q > context.threshold("overfit_pq") for q in pq])
        if start is not None:
            return start, end, "pq", pq, flags
        logged = any(v is not None for v in train)
        by = "gl" if not logged else "gap" if gap is not None and gap > context.threshold(
            "overfit_gap") else None
        if by is not None:
            start, end = _first_rise(flags, patience, [True] * len(gl))
        return start, end, (by if start is not None else None), pq, flags

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
        pq_t, k = context.threshold("overfit_pq"), int(context.threshold("overfit_strip"))
        patience = int(context.threshold("overfit_patience"))
        best, gap, falling = evidence["best_epoch"], evidence["gap"], evidence["train_falling"]
        gapped = gap is not None and gap > gap_t
        gap_text = (f"the relative train/val {evidence['gap_kind']} gap is {fmt(gap)}"
                    if gap is not None else "no train/val gap could be computed")
        onset = evidence["rise_epoch"] or evidence["gl_rise_epoch"]
        rise = (f"the generalization loss GL exceeded {fmt(gl_t)} for {patience} or more "
                f"epochs from epoch {onset} (up to {fmt(evidence['max_gl'])}: "
                f"validation loss {pct(evidence['max_gl'] / 100)} above its minimum at epoch "
                f"{best})")
        stop = (f"Use early stopping at epoch {best} (the validation-loss minimum); regularize with "
                "L2 weight decay (or L1), dropout and data augmentation, or get more data.")
        if evidence["repaired"]:
            return (Severity.INFO, f"The validation loss rose ({rise}), but came back: over the "
                    f"last {patience} epochs GL is {fmt(evidence['final_gl'])} (median, <= "
                    f"{fmt(gl_t)}), so the rise was a passing excursion, not overfitting "
                    f"({gap_text}).", "Nothing to stop for; if the validation loss scatters "
                    "this much from epoch to epoch, a larger validation set steadies it.")
        if evidence["rise_epoch"] is not None and falling is not False:
            why = (f"progress quotient PQ = GL / P_{k} {fmt(evidence['pq_at_rise'])} > "
                   f"{fmt(pq_t)} at epoch {evidence['pq_epoch']}" if evidence["rise_by"] == "pq"
                   else f"PQ at most {fmt(evidence['max_pq_in_rise'])}, but the accuracy gap "
                   "shows the progress does not carry over to validation")
            train = ("while the training loss did not rise "
                     f"({fmt(evidence['train_loss_at_best'])} -> "
                     f"{fmt(evidence['train_loss_after'])}; {why})" if falling
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
        if evidence["gl_rise_epoch"] is not None:
            return (Severity.INFO, f"The validation loss rose ({rise}), but the training loss "
                    f"was still falling fast: the progress quotient PQ = GL / P_{k} stayed at or "
                    f"below {fmt(pq_t)} (at most {fmt(evidence['max_pq_in_rise'])}), so the rise "
                    f"may still be repaired; not overfitting yet ({gap_text}).",
                    f"Train on and watch the validation loss; early stopping with a patience of "
                    f"a few epochs keeps the best epoch ({best} so far).")
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
