"""The :class:`Explainer` base class, its registry, and the job every method works on.

One verb: ``Explainer(model).explain(inputs, target) -> Attribution``. The base does everything
methods share: input checks, device and train-mode handling, target resolution, the structural
preflight and fallbacks, batching, the model guard, and post-processing (token ids are attributed
in embedding space and summed over the embedding dimension). A method implements only
:meth:`Explainer._attribute` on one chunk.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import time
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from explain._core.guard import ModelGuard
from explain._registry import Registry
from explain._validation import unknown_name
from explain.attribution import preflight as pf
from explain.attribution.backoff import Backoff, run_chunked
from explain.attribution.batching import (
    PROBE_ROWS,
    BatchPlan,
    cached_plan,
    expand_args,
    memory_budget,
    plan_key,
    plan_rows,
    remember,
)
from explain.attribution.job import Chunk, Job
from explain.attribution.result import Attribution
from explain.attribution.structure import gradient_checked, incompatibilities
from explain.card import ModelCard, card_of
from explain.errors import InvalidInputError

__all__ = ["Explainer", "Job", "Chunk", "EXPLAINERS", "register_explainer"]

EXPLAINERS: Registry[type[Explainer]] = Registry("attribution method")


def register_explainer(name: str) -> Callable[[type[Explainer]], type[Explainer]]:
    """Class decorator: register an :class:`Explainer` subclass under ``name``."""
    def deco(cls: type[Explainer]) -> type[Explainer]:
        cls.name = name
        return EXPLAINERS.register(name)(cls)
    return deco


def _not_implemented(self: Explainer, job: Job, chunk: Chunk, rows: int,
                     **options: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    raise NotImplementedError


class Explainer:
    """Base class of every attribution method: ``Explainer(model).explain(inputs, target)``.

    Parameters
    ----------
    model : any ``nn.Module`` returning logits ``[batch, classes]``; never modified.
    card : a :class:`explain.ModelCard`; defaults to ``model.card`` when present.

    Class attributes describe the method: ``gradient`` (needs input gradients), ``rule_based``
    (``"deeplift"``/``"shap_deep"``: propagation rules that some layers break), ``fallback``
    (the method used instead when preflight finds such layers) and ``has_delta``.
    """

    name: ClassVar[str] = ""
    gradient: ClassVar[bool] = True
    rule_based: ClassVar[str | None] = None
    fallback: ClassVar[str | None] = None
    has_delta: ClassVar[bool] = False
    uses_baselines: ClassVar[bool] = True

    def __init__(self, model: nn.Module, card: ModelCard | None = None) -> None:
        self.model = model
        self.card = card

    # -- what subclasses implement ------------------------------------------------------------
    def unsupported(self, job: Job) -> str | None:
        """Why this method cannot explain ``job`` at all (e.g. grad_cam on text), or ``None``."""
        return None

    def evaluations(self, job: Job, options: dict[str, Any]) -> int:
        """Model evaluations (rows) per sample, used to size batches and by the benchmark."""
        return 1

    def chunk_size(self, rows: int, job: Job, options: dict[str, Any]) -> int:
        """Samples per call of :meth:`_attribute` so one pass holds about ``rows`` rows."""
        return max(1, rows // max(1, self.evaluations(job, options)))

    #: Attribute one chunk; return values shaped like ``chunk.x`` and the delta or None. Each
    #: method defines it with its own keyword options (hence ``Callable[...]``).
    _attribute: Callable[..., tuple[torch.Tensor, torch.Tensor | None]] = _not_implemented

    # -- the verb -----------------------------------------------------------------------------
    def explain(self, inputs: torch.Tensor, target: Any = None, *,
                baselines: torch.Tensor | float | None = None,
                additional_forward_args: Any = None, batch_size: int | None = None,
                memory_budget: int | None = None, pad_id: int | None = None,
                **options: Any) -> Attribution:
        """Attribute the ``target`` logit of each sample to its input features.

        Parameters
        ----------
        inputs : ``[batch, *sample_shape]`` float tensor, or int64 token ids ``[batch, tokens]``.
        target : ``None`` (the predicted class), an int, or one int per sample.
        baselines : reference input, broadcastable to ``inputs``. Default: zeros; all-pad ids
            (``pad_id``) for token ids; for sequences zeros that keep each sequence's length (valid
            frames hold 1e-6, so the model does not see an empty sequence).
        additional_forward_args : extra arguments passed to ``model(inputs, *args)`` (masks).
        batch_size : rows per forward+backward pass; default: measured (auto-tuned).
        memory_budget : bytes one pass may use; default half the free GPU memory, or a quarter
            of free RAM up to 2 GiB.
        pad_id : the padding id of token ids: those positions get exactly 0 and are the default
            baseline. Default ``model.config.pad_token_id``, else 0 (RoBERTa-style models pad
            with 1).
        **options : method options, e.g. ``n_steps`` for integrated gradients.

        Returns
        -------
        Attribution
        """
        from explain.attribution.prepare import prepare  # avoid an import cycle

        self._check_options(options)
        t0 = time.perf_counter()
        inputs = pf.check_inputs(inputs)
        model, notes = self._eval_model()
        with ModelGuard(self.model):
            job = prepare(model, self.card or card_of(self.model), inputs, target, baselines,
                          additional_forward_args, notes, pad_id)
            job.batch_size, job.memory_budget = batch_size, memory_budget
            try:
                with _cudnn_off(job):
                    method = self._resolve(job)
                    t1 = time.perf_counter()
                    method, (values, delta) = method._run_or_fall(job, options)
                    t2 = time.perf_counter()
            except pf.MODEL_ERRORS:
                if job.recheck is not None:  # the typed error of a check a cached answer skipped
                    job.recheck()
                raise
        values = _to_input_space(job, values)
        base = job.baselines if job.baseline_ids is None else job.baseline_ids
        return Attribution(
            values=values.detach().cpu(), method=method.name, target=job.target.cpu(),
            inputs=inputs.detach().cpu(),
            baselines=base.detach().cpu() if method.uses_baselines else None,
            convergence_delta=None if delta is None else delta.detach().cpu(),
            warnings=tuple(job.warnings),
            timings={"preflight": t1 - t0, "attribute": t2 - t1, "probe": job.probe_s,
                     "total": time.perf_counter() - t0,
                     "rows_per_pass": float(job.plan.rows if job.plan else 0)},
            requested_method=self.name, plan=job.plan,
            steps=torch.cat(job.steps).cpu() if job.steps else None,
            pad_id=None if job.token_ids is None else job.pad_id)

    # -- shared machinery ---------------------------------------------------------------------
    @classmethod
    def options(cls) -> list[str]:
        """Method-specific options: the keyword arguments of :meth:`_attribute`."""
        return list(_options_of(cls))

    def _check_options(self, options: dict[str, Any]) -> None:
        """Unknown options raise; those of the fallback method are accepted too."""
        valid, cls = set(self.options()), type(self)
        while cls.fallback:
            cls = EXPLAINERS.get(cls.fallback)
            valid |= set(cls.options())
        for key in options:
            if key not in valid:
                raise unknown_name(f"option of {self.name!r}", key, valid)

    def _eval_model(self) -> tuple[nn.Module, list[str]]:
        if not any(m.training for m in self.model.modules()):
            return self.model, []
        twin = copy.deepcopy(self.model).eval()
        return twin, ["the model is in train mode: explained an eval-mode copy (dropout off, "
                      "BatchNorm running statistics), the model itself was left in train mode"]

    def _resolve(self, job: Job) -> Explainer:
        """This method, or the valid method preflight falls back to (with a warning)."""
        reason = self.unsupported(job)
        if reason:
            ok = [n for n in EXPLAINERS if EXPLAINERS.get(n)(job.model).unsupported(job) is None]
            raise InvalidInputError(
                f"The method {self.name!r} cannot explain this model: {reason}. Use one of "
                f"{', '.join(map(repr, ok))} instead.")
        if self.gradient and job.inputs.dtype in (torch.int32, torch.int64) and \
                job.token_ids is None:
            return self._fall("feature_ablation", job, "integer inputs have no gradient and no "
                              "embedding layer was found")
        if self.rule_based:
            issues = incompatibilities(self.rule_based, job.structure())
            if job.token_ids is not None and self.rule_based == "shap_deep":
                issues.append("shap's DeepExplainer cannot propagate through a token lookup")
            if issues:
                return self._fall(self.fallback or "integrated_gradients", job,
                                  "; ".join(issues))
        return self

    def _run_or_fall(self, job: Job, options: dict[str, Any]
                     ) -> tuple[Explainer, tuple[torch.Tensor, torch.Tensor | None]]:
        """Run; a rule-based method whose propagation rules break while running (e.g. shap's
        DeepExplainer hooks meeting torchvision's in-place ``out += identity``) falls back, with
        the reason, instead of surfacing a traceback from inside the library."""
        said = len(job.warnings)
        if not self.rule_based:
            return self._informative_or_fall(job, options, self._run(job, options), said)
        try:
            with ModelGuard(job.model):  # removes the hooks a failed run leaves on the modules
                out = self._run(job, options)
        except RuntimeError as exc:
            if isinstance(exc, torch.OutOfMemoryError):
                raise
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            to = self._fall(self.fallback or "integrated_gradients", job,
                            f"its propagation rules broke while running ({first})")
            return to._run_or_fall(job, options)
        return self._informative_or_fall(job, options, out, said)

    def _informative_or_fall(self, job: Job, options: dict[str, Any],
                             out: tuple[torch.Tensor, torch.Tensor | None], said: int
                             ) -> tuple[Explainer, tuple[torch.Tensor, torch.Tensor | None]]:
        """A gradient method's answer, unless every value is zero *and* the gradient check
        (:func:`~.structure.gradient_checked`, zero gradient although the output changes) finds a
        non-differentiable step: then what it said is dropped and feature ablation runs. Any
        non-zero value already proves the gradient informative, so the check costs nothing on
        a working model."""
        if not self.gradient or bool(out[0].any()) or gradient_checked(
                job.model, job.forward, job.x, job.args, job.target):
            return self, out
        del job.warnings[said:]
        job.steps.clear()
        job.unconverged.clear()
        to = self._fall("feature_ablation", job, "the gradient is zero everywhere although the "
                        "output changes (a non-differentiable step in the model)")
        return to._run_or_fall(job, options)

    def _fall(self, to: str, job: Job, why: str) -> Explainer:
        job.warnings.append(f"{self.name} -> {to}: {why}")
        return EXPLAINERS.get(to)(self.model, self.card)._resolve(job)

    def _run(self, job: Job, options: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
        mine = set(self.options())
        own = {k: v for k, v in options.items() if k in mine}
        n = job.x.shape[0]

        def one(lo: int, hi: int, r: int) -> tuple[torch.Tensor, torch.Tensor | None]:
            part = Chunk(job.x[lo:hi], job.baselines[lo:hi], job.target[lo:hi],
                         expand_args(job.args, slice(lo, hi), n))
            return self._attribute(job, part, r, **own)

        with warnings.catch_warnings():
            # captum's notes about setting requires_grad / hooks are about its own bookkeeping
            warnings.filterwarnings("ignore", category=UserWarning, module=r"captum\..*")
            outs = self._chunks(job, options, one)
        values = torch.cat([v.detach() for v, _ in outs])
        delta = (torch.cat([d.detach().reshape(-1) for _, d in outs])
                 if outs[0][1] is not None else None)
        if delta is not None:
            _warn_delta(self.name, job, values, delta)
        self._finish(job, values, delta)
        return values, delta

    def _chunks(self, job: Job, options: dict[str, Any], one: Callable) -> list[Any]:
        """Run ``one`` over every chunk at the plan (made from the footprint on a new shape).
        After an out-of-memory back-off the plan (reported and remembered) is the largest pass
        that fit, so the next call starts there; a given ``batch_size`` backs off in the call."""
        n = job.x.shape[0]
        evals = max(1, self.evaluations(job, options))  # checks the method's options (n_steps...)
        backoff = Backoff(job.model)                    # the passes are calls of job.model
        if job.batch_size is not None:
            job.plan = BatchPlan(rows=max(1, int(job.batch_size)))
            return run_chunked(one, n, min(n, self.chunk_size(job.plan.rows, job, options)),
                               job.plan.rows, job.warnings, backoff=backoff)
        key = plan_key(job.x, self.gradient, job.token_ids is not None)
        plan = cached_plan(self.model, key, job.memory_budget)  # the caller's model, not a copy
        if plan is None and n * evals <= PROBE_ROWS:
            # the whole job is one pass no larger than a probe: nothing to plan or measure
            job.plan, chunk = BatchPlan(rows=n * evals, reason="one pass"), n
        else:
            job.plan = plan or self._planned(job, key)
            chunk = min(n, self.chunk_size(job.plan.rows, job, options))
        outs = run_chunked(one, n, chunk, job.plan.rows, job.warnings, backoff=backoff)
        if backoff.rows:  # it ran out of memory: remember the pass that fit
            job.plan = backoff.capped(job.plan)
            remember(self.model, key, job.plan)
        return outs

    def _planned(self, job: Job, key: tuple) -> BatchPlan:
        """The plan of a new shape from :meth:`Job.footprint` (a forward of 4 samples with
        gradients; its time is the ``"probe"`` timing), remembered for later calls (a job
        built without a measurer runs passes of ``PROBE_ROWS``, not remembered). Every pass
        of a first call is then a pass of the plan, exactly as in a later call. Tensors that
        do not grow with the rows are left out of the per-row sizes, so the 4 rows give the
        integrated-gradients plan a full pass gave (the zoo models, resnet_bn, bigru, MiniLM
        and five others, at 1 and 2 threads). A method without gradients (occlusion) is
        planned from the same footprint: with gradients off, fused layers (a transformer
        encoder's fast path) hide the tensors they work on."""
        t = time.perf_counter()
        fp = job.footprint()
        if fp is None or not fp.rows:
            return BatchPlan(rows=PROBE_ROWS, reason="given")
        budget = (memory_budget(job.x.device) if job.memory_budget is None
                  else int(job.memory_budget))
        plan = plan_rows(fp, job.x.device, budget, backward=self.gradient)
        if fp.fitted_rows:
            job.warnings.append(f"out of memory: the measured forward fit {fp.fitted_rows} "
                                f"samples; planned {plan.rows} rows per pass")
        job.probe_s = time.perf_counter() - t
        remember(self.model, key, plan)
        return plan

    def _finish(self, job: Job, values: torch.Tensor, delta: torch.Tensor | None) -> None:
        """Hook after all chunks ran (e.g. integrated gradients reports unconverged samples)."""


_OPTIONS: dict[type, tuple[str, ...]] = {}


def _options_of(cls: type[Explainer]) -> tuple[str, ...]:
    """The keyword options of ``cls._attribute`` (read once per class: a signature costs
    ~0.1 ms, twice per call)."""
    if cls not in _OPTIONS:
        params = inspect.signature(cls._attribute).parameters
        _OPTIONS[cls] = tuple(p for p in params if p not in ("self", "job", "chunk", "rows"))
    return _OPTIONS[cls]


def _cudnn_off(job: Job):
    if job.x.is_cuda and job.structure().has_rnn:
        job.warnings.append("cuDNN switched off during attribution: its RNN backward only runs "
                            "in train mode and the model stays in eval mode")
        return torch.backends.cudnn.flags(enabled=False)
    return contextlib.nullcontext()


def _warn_delta(name: str, job: Job, values: torch.Tensor, delta: torch.Tensor) -> None:
    """Warn when completeness (sum of attributions = f(x) - f(baseline)) is far off."""
    total = values.flatten(1).sum(1).abs()
    rel = (delta.abs() / (total + delta.abs() + 1e-6)).median()
    if float(rel) > 0.05:
        job.warnings.append(
            f"{name}: median convergence delta is {float(rel):.0%} of the attribution total; "
            "raise 'n_steps' for a more faithful result")


def _to_input_space(job: Job, values: torch.Tensor) -> torch.Tensor:
    """Token ids: sum over the embedding dimension and zero the padding (``job.pad_id``)."""
    if job.token_ids is None:
        return values
    summed = values.sum(-1)                                           # [batch, tokens]
    return torch.where(job.token_ids != job.pad_id, summed, torch.zeros_like(summed))
