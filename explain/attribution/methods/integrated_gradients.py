"""Integrated gradients: captum ``IntegratedGradients`` with planned internal batching, or
``n_steps="auto"``, per-interval adaptive trapezoid refinement that stops when complete."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import torch
from captum import attr
from captum.attr._utils.approximation_methods import approximation_parameters

from explain._validation import check_choice, check_float, check_int
from explain.attribution.base import Chunk, Explainer, Job, register_explainer
from explain.attribution.methods._auto_steps import START, auto_integrated_gradients
from explain.attribution.methods._gradients import fast_gradients
from explain.errors import InvalidInputError

__all__ = ["IntegratedGradients"]

_METHODS = ["gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right",
            "riemann_middle"]


@register_explainer("integrated_gradients")
class IntegratedGradients(Explainer):
    """Path integral of gradients from the baseline to the input; ``sum(values) ~ f(x) - f(b)``.

    Options: ``n_steps`` (50, or ``"auto"``), ``method`` (``"gausslegendre"``, or
    ``"riemann_trapezoid"``...; fixed steps only), ``tolerance`` (0.01) and ``max_steps`` (513)
    for ``"auto"``. ``convergence_delta`` is the completeness error per sample,
    ``sum(values) - (f(x) - f(b))``.

    With ``n_steps="auto"`` each sample starts from 9 trapezoid points and only the intervals
    whose own completeness residual or feature error is too large get midpoints (on a ReLU
    network: the intervals holding a kink), until the completeness error is within
    ``tolerance`` times ``|f(x) - f(b)|`` and the estimated feature error is small;
    every evaluation is kept. ``Attribution.steps`` holds the evaluations per sample, and
    samples still incomplete at ``max_steps`` are named in ``warnings``.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(3, 2).eval()
    >>> a = IntegratedGradients(model).explain(torch.ones(1, 3), target=0, n_steps=8)
    >>> torch.allclose(a.values, model.weight[0:1].detach(), atol=1e-5)
    True
    >>> IntegratedGradients(model).explain(torch.ones(2, 3), target=0, n_steps="auto").steps
    tensor([9, 9])
    """

    has_delta = True

    @staticmethod
    def _auto(options: dict) -> bool:
        return isinstance(options.get("n_steps"), str) and options["n_steps"] == "auto"

    def evaluations(self, job: Job, options: dict) -> int:
        if self._auto(options):
            return START + 1
        return check_int(options.get("n_steps", 50), "n_steps", owner=self.name, min=1)

    def chunk_size(self, rows: int, job: Job, options: dict) -> int:
        if self._auto(options):
            return job.x.shape[0]   # refinement packs every unconverged sample into full passes
        # captum splits the steps: a chunk of c samples runs rows // c steps per pass
        return max(1, min(rows, job.x.shape[0]))

    def _attribute(self, job: Job, chunk: Chunk, rows: int, n_steps: Any = 50,
                   method: str | None = None, tolerance: float = 0.01,
                   max_steps: int = 513) -> tuple[torch.Tensor, torch.Tensor]:
        if n_steps == "auto":
            if method not in (None, "riemann_trapezoid"):
                raise InvalidInputError(
                    "The 'method' parameter of integrated_gradients must be None or "
                    f"'riemann_trapezoid' with n_steps='auto'. Got {method!r} instead.")
            out = auto_integrated_gradients(
                job.forward, chunk.x, chunk.baselines, chunk.target, chunk.args, rows,
                tolerance=float(check_float(tolerance, "tolerance", owner=self.name, min=0.0) or 0),
                max_steps=check_int(max_steps, "max_steps", owner=self.name, min=START + 1))
            job.steps.append(out.steps)
            job.unconverged.append(~out.converged)
            return out.values, out.delta
        method = check_choice(method or "gausslegendre", "method", _METHODS, owner=self.name)
        return _fixed_steps(job, chunk, rows, int(n_steps), method)

    def _finish(self, job: Job, values: torch.Tensor, delta: torch.Tensor | None) -> None:
        if not job.unconverged:
            return
        bad = torch.cat(job.unconverged).nonzero().flatten().tolist()
        if bad:
            cap = int(torch.cat(job.steps).max())
            shown = ", ".join(map(str, bad[:10])) + (", ..." if len(bad) > 10 else "")
            job.warnings.append(
                f"integrated_gradients: {len(bad)} of {values.shape[0]} samples did not reach "
                f"the completeness tolerance within {cap} steps (samples {shown}); their "
                "convergence_delta shows how far off they are, raise 'max_steps' or "
                "'tolerance'")


def _has_step_seam() -> bool:
    """Whether this captum's ``IntegratedGradients._attribute`` (private: what its own
    ``_batch_attribution`` calls) takes ``step_sizes_and_alphas``, as 0.7-0.8 do."""
    seam = getattr(attr.IntegratedGradients, "_attribute", None)
    return seam is not None and "step_sizes_and_alphas" in inspect.signature(seam).parameters


_STEP_SEAM = _has_step_seam()   # read once, at import: the captum installed


@functools.cache
def _nodes(method: str, n_steps: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """captum's step sizes and alphas for ``method`` (Gauss-Legendre nodes cost ~1 ms to make;
    captum makes them again on every call)."""
    step_sizes, alphas = approximation_parameters(method)
    return tuple(step_sizes(n_steps)), tuple(alphas(n_steps))


def _fixed_steps(job: Job, chunk: Chunk, rows: int, n_steps: int,
                 method: str) -> tuple[torch.Tensor, torch.Tensor]:
    """captum's ``IntegratedGradients.attribute`` with ``internal_batch_size=rows``: its own
    step batching (``rows // samples`` steps per pass, each batch through captum's
    ``_attribute`` with explicit step sizes and alphas, as captum's ``_batch_attribution``
    does), with the nodes cached and captum's completeness delta. The steps left are split
    into as many passes as full passes of ``rows`` would take, as equal as possible (50 steps
    of 64 samples at 1024 rows: 13, 13, 12, 12 instead of captum's 16, 16, 16, 2): the same
    per-pass overhead, and no pass larger than it must be."""
    ig = fast_gradients(attr.IntegratedGradients(job.forward))
    if not _STEP_SEAM:            # a captum without the private seam: its public batching
        values, delta = ig.attribute(chunk.x, chunk.baselines, target=chunk.target,
                                     additional_forward_args=chunk.args or None,
                                     n_steps=n_steps, method=method, internal_batch_size=rows,
                                     return_convergence_delta=True)
        return values.detach(), delta
    sizes, alphas = _nodes(method, n_steps)
    per_pass = max(1, rows // chunk.x.shape[0])
    total = torch.zeros_like(chunk.x)
    lo = 0
    while lo < n_steps:
        left = n_steps - lo
        hi = lo + -(-left // -(-left // per_pass))   # ceil(left / passes still needed)
        (part,) = ig._attribute((chunk.x,), (chunk.baselines,), target=chunk.target,
                                additional_forward_args=chunk.args or None, n_steps=hi - lo,
                                method=method,
                                step_sizes_and_alphas=(list(sizes[lo:hi]), list(alphas[lo:hi])))
        total += part.detach()
        lo = hi
    delta = ig.compute_convergence_delta(total, chunk.baselines, chunk.x,
                                         additional_forward_args=chunk.args or None,
                                         target=chunk.target)
    return total, delta
