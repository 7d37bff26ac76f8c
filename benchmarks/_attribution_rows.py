"""One benchmark row per (model, method): interleaved timings of ours, the limit of the method
that ran, captum's default and captum's best fixed batch value; and how the row is printed.

Ratios are medians of per-repeat ratios (the repeats are interleaved, so each pair saw the same
machine state) with their min-max spread. ``ours/limit`` is the fraction of the limit reached;
``captum/ours`` above 1 means ours is faster.
"""

from __future__ import annotations

import functools
import statistics
from dataclasses import dataclass

import _attribution_limits as lim
import torch

FAST = {"integrated_gradients": {}, "deeplift": {}, "gradient_shap": {"n_samples": 16},
        "smoothgrad": {"nt_samples": 16}, "shap_gradient": {"nsamples": 32},
        "shap_kernel": {"nsamples": 64}}


@dataclass(frozen=True)
class MethodRow:
    """Interleaved seconds of one (model, method) setting; ``captum``/``best`` empty when there
    is no comparison; ``ran`` is the method that actually ran (after preflight fallbacks)."""

    model: str
    method: str
    ran: str
    limit_kind: str          # "forward+backward" or "forward"
    limit_rows: int          # rows the job needs: samples x evaluations per sample
    first: tuple[float, ...]
    ours: tuple[float, ...]
    limit: tuple[float, ...]
    captum: tuple[float, ...] = ()
    best: tuple[float, ...] = ()
    best_label: str = ""     # e.g. "perturbations_per_eval=8", or why there is none
    note: str = ""


def spread(values) -> str:
    """``median [min-max]`` with 3 decimals."""
    return f"{statistics.median(values):.3f} [{min(values):.3f}-{max(values):.3f}]"


def paired(num, den) -> tuple[float, float, float]:
    """(median, min, max) of ``num[i] / den[i]``."""
    r = [a / b for a, b in zip(num, den)]
    return statistics.median(r), min(r), max(r)


def ratio(num, den) -> str:
    med, lo, hi = paired(num, den)
    return f"{med:.2f} [{lo:.2f}-{hi:.2f}]"


HEADER = (f"{'model':12}{'method':21}{'ran (if other)':24}{'1st/n':>6}{'ours s':>23}{'limit':>7}"
          f"{'limit s':>23}{'ours/limit':>18}{'captum default s':>23}{'captum/ours':>18}"
          f"   best fixed: value  s  captum/ours")


def format_row(row: MethodRow) -> str:
    """The row as one line (columns as in :data:`HEADER`)."""
    kind = {"forward": "fwd", lim.NOISY: "f+b~"}.get(row.limit_kind, "f+b")
    ran = "" if row.ran == row.method else f"-> {row.ran}"
    line = (f"{row.model:12}{row.method:21}{ran:24}"
            f"{statistics.median(row.first) / statistics.median(row.ours):6.2f}"
            f"{spread(row.ours):>23}{kind:>7}{spread(row.limit):>23}"
            f"{ratio(row.limit, row.ours):>18}")
    line += (f"{spread(row.captum):>23}{ratio(row.captum, row.ours):>18}" if row.captum
             else f"{'-':>23}{'-':>18}")
    if row.best:
        line += f"   {row.best_label}  {spread(row.best)}  {ratio(row.best, row.ours)}"
    elif row.best_label:
        line += f"   {row.best_label}"
    return line + (f"   ({row.note})" if row.note else "")


def evaluations(method: str, model, x, options: dict) -> int:
    """Model evaluations one sample of ``x`` needs under ``method`` (its ``evaluations``)."""
    from explain.attribution import get_explainer
    from explain.attribution.base import Job
    from explain.attribution.structure import Trace

    job = Job(model=model, card=model.card, modality=model.card.modality.value, inputs=x,
              x=x if x.is_floating_point() else torch.zeros(*x.shape, 1), baselines=x,
              args=(), forward=model, target=torch.zeros(len(x), dtype=torch.long),
              trace=Trace(), token_ids=None if x.is_floating_point() else x)
    return get_explainer(method)(model).evaluations(job, options)


def _no_best(method: str) -> str:
    if method == "gradient_shap":
        return "captum has no batch option (captum #1350)"
    return "captum runs the batch in one pass (no batch option)"


def measure(name: str, method: str, model, x, target, repeats: int, n_steps: int,
            limits: dict) -> MethodRow | str:
    """Time one setting, interleaved: first call, ours, limit, captum default, captum best.

    ``limits`` maps a pass kind to a ``run(rows)`` job (:func:`_attribution_limits.limit_job`).
    Returns the row, or a line saying why the setting was skipped.
    """
    import explain
    from explain.attribution.batching import clear_cache

    options = dict(FAST.get(method, {}))
    if method in ("integrated_gradients", "deeplift"):
        options["n_steps"] = n_steps
    try:
        ran = explain.attribute(model, x[:2], target[:2], method=method, **options).method
    except explain.InvalidInputError as err:
        return f"{name:12}{method:21}  skipped: {str(err)[:70]}"
    ran = explain.attribute(model, x, target, method=method, **options).method
    evals, kind = evaluations(ran, model, x, options), lim.pass_kind(ran)
    call = functools.partial(explain.attribute, model, x, target, method=method, **options)
    mine = [lim.timed(call, x) for _ in range(2)]
    theirs = best_call = None
    label, note = "", ""
    try:
        theirs = lim.captum_call(method, model, x, target, options)
    except ValueError:
        label = "no captum comparison"
    if theirs is not None:
        cap = evaluations(method, model, x, options) - (method == "occlusion")
        found = lim.best_fixed(lambda v: lim.captum_call(method, model, x, target, options, v),
                               lim.candidates(method, len(x), cap), min(mine), x)
        if found is None:
            label = _no_best(method)
        else:
            label = f"{lim.BATCH_OPTION[method]}={found[0]}"
            best_call = lim.captum_call(method, model, x, target, options, found[0])
    if ran != method and method == "deeplift":
        note = (f"captum's DeepLift runs without error, completeness off by "
                f"{lim.completeness_error(model, x, target):.0%} (median)")
    firsts, ours, limit, cap_t, best_t = [], [], [], [], []
    for _ in range(repeats):
        call()                     # untimed: both timed calls below follow one of ours
        ours.append(lim.timed(call, x))
        clear_cache()              # a new shape: the 4-sample footprint is measured again
        firsts.append(lim.timed(call, x))
        limit.append(lim.timed(functools.partial(limits[kind], len(x) * evals), x))
        if theirs is not None:
            cap_t.append(lim.timed(theirs, x))
        if best_call is not None:
            best_t.append(lim.timed(best_call, x))
    return MethodRow(name, method, ran, kind, len(x) * evals, tuple(firsts), tuple(ours),
                     tuple(limit), tuple(cap_t), tuple(best_t), label, note)
