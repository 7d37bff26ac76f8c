"""The physical limit of an attribution job, timing, and captum called as a user calls it, for
``benchmarks/attribution.py``.

The limit of a job is the rows it needs (samples x model evaluations per sample, from the method
actually run: :meth:`explain.Explainer.evaluations`) pushed through the pass that method needs at
the best batched rows/s: forward+backward to the input for gradient methods (over noisy copies
of the inputs for smoothgrad: :func:`pass_kind`), a forward pass without gradients for
perturbation methods (occlusion, feature ablation, kernel SHAP; captum runs those under
``torch.no_grad``). Token ids are differentiated at the embedding output. Beside each limit
the benchmark prints what bounds it from above on the CPU (:func:`compute_share`): the FLOPs of a
row in matrix products and convolutions (``FlopCounterMode``) times the limit's rows/s, over
this host's float32 matmul rate at the same threads. Near 1, the job is bound by arithmetic and
no batching can beat the limit; far below, by memory traffic or per-operator overhead.

captum is called the way its documentation shows, with the least glue a text model needs:
``LayerIntegratedGradients`` / ``LayerDeepLift`` / ``LayerGradientXActivation`` (saliency, with
``abs``) on the embedding layer, and for smoothgrad and gradient_shap, whose noise captum would add
to the integer ids (``LayerGradientShap`` fails on them), the plain methods on embedding outputs
fed back by a forward hook (:class:`explain.attribution.prepare.EmbeddingForward`).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator

import torch

#: captum's option that sets rows per pass, per method; methods absent have none (saliency and
#: deeplift run the batch in one pass; gradient_shap has none: captum issue #1350).
BATCH_OPTION = {"integrated_gradients": "internal_batch_size",
                "smoothgrad": "nt_samples_batch_size", "occlusion": "perturbations_per_eval"}
SIZES = (32, 64, 128, 256, 512, 1024, 2048, 4096)


NOISY = "forward+backward on noisy copies"
#: smoothgrad's noise (its default stdev_spread): the limit's rows get the same
NOISE_SPREAD = 0.15


def pass_kind(method: str) -> str:
    """``"forward+backward"`` for gradient methods, ``"forward"`` for perturbation methods, and
    :data:`NOISY` for smoothgrad: its rows are noisy copies, and a pass over them is slower
    than over the clean inputs (the zoo cnn, 64 rows, one thread: 21.0 against 19.2 ms, its
    max-pooling 36% slower a row: the max falls at random places), a cost of the job's own
    rows that the limit keeps."""
    from explain.attribution import get_explainer

    if method == "smoothgrad":
        return NOISY
    return "forward+backward" if get_explainer(method).gradient else "forward"


def noisy_copies(x: torch.Tensor, spread: float = NOISE_SPREAD) -> torch.Tensor:
    """``x`` plus Gaussian noise of ``spread`` times each sample's value range (``spread``
    itself for a constant sample), as smoothgrad draws it (one fixed generator: the limit's
    rows, not the method's). Padded sequences ``[batch, time, features]`` keep their padding,
    as smoothgrad keeps it: noise and range on the valid frames only."""
    from explain._core.tensors import valid_frames
    from explain.attribution.methods.smoothgrad import value_ranges

    valid = valid_frames(x) if x.dim() == 3 else None
    if valid is not None and bool(valid.all()):
        valid = None
    lengths = None if valid is None else valid.sum(1).tolist()
    span = value_ranges(x, lengths)
    scale = torch.where(span > 0, span, torch.ones_like(span)) * spread
    gen = torch.Generator(device=x.device).manual_seed(0)
    noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
    noise = noise * scale.view(-1, *([1] * (x.dim() - 1)))
    if valid is not None:
        noise = noise * valid[..., None]
    return x + noise


def _sync(x: torch.Tensor) -> None:
    if x.is_cuda:
        torch.cuda.synchronize(x.device)


def timed(fn: Callable[[], object], x: torch.Tensor) -> float:
    start = time.perf_counter()
    fn()
    _sync(x)
    return time.perf_counter() - start


def _embedding(model) -> torch.nn.Module:
    return model.get_submodule(model.card.layers["embedding"])


def _pass(model, x, target, backward: bool, noisy: bool, leaf_view: bool = False):
    """``(one_pass, batch)``: one limit pass over given rows (forward + backward to the input, or
    to the embedding output for token ids; ``backward=False``: a forward under ``no_grad``) and
    ``batch(rows)``, the rows cycled from ``x`` (:func:`noisy_copies` when ``noisy``).
    ``leaf_view``: the model gets a view of the differentiated leaf (``FlopCounterMode``'s module
    hooks refuse a leaf under ``autograd.grad``)."""
    from explain.attribution.prepare import EmbeddingForward, PlainForward

    forward: torch.nn.Module
    args: tuple[torch.Tensor, ...]
    if x.dtype == torch.int64:
        emb = _embedding(model)
        forward, args = EmbeddingForward(model, emb), (x,)
        with torch.no_grad():
            inp = emb(x)
    else:
        forward, args, inp = PlainForward(model), (), x
    if noisy:
        inp = noisy_copies(inp)

    def batch(rows):
        idx = torch.arange(rows, device=x.device) % x.shape[0]
        return inp[idx].clone(), tuple(a[idx] for a in args), target[idx]

    def one_pass(xi, ai, ti):
        if not backward:
            with torch.no_grad():
                forward(xi, *ai).gather(1, ti[:, None])
            return
        xg = xi.detach().requires_grad_(True)
        out = forward(xg.view_as(xg) if leaf_view else xg, *ai).gather(1, ti[:, None]).sum()
        torch.autograd.grad(out, xg)

    return one_pass, batch


def limit_job(model, x, target, job_rows: int = 2048, backward: bool = True,
              sizes=(16, 32, 64, 128, 256, 512, 1024, 2048), noisy: bool = False):
    """The physical limit as a job: ``run(rows)`` pushes ``rows`` rows through forward (+
    backward to the input, or to the embedding output for token ids) in equal passes no larger
    than the fastest size; ``backward=False`` runs forward passes under ``torch.no_grad``;
    ``noisy``: the rows are :func:`noisy_copies` of the inputs (of their embeddings for
    token ids).

    Returns ``(run, best_size, best_rows_per_s)``; the size is the one with the highest rows/s
    (best of the last 2 of 3 passes each; sizes stop at ``job_rows``, the rows of the largest
    job, and after two sizes 15% below the best). The benchmark times ``run`` interleaved with
    the method, so both see the same machine state.
    """
    one_pass, batch = _pass(model, x, target, backward, noisy)
    best, best_rate, worse = sizes[0], 0.0, 0
    for rows in sizes:
        b = batch(rows)
        times = [timed(functools.partial(one_pass, *b), x) for _ in range(3)]
        rate = rows / min(times[1:])
        if rate > best_rate:
            best, best_rate, worse = rows, rate, 0
        elif rate < 0.85 * best_rate:   # past the cache: larger passes only get slower
            worse += 1
            if worse == 2:
                break
        if rows >= job_rows:
            break
    full = batch(best)

    def run(total_rows: int) -> None:
        # as many passes as full ones of the best size take, as equal as possible (3200 rows
        # at 1024: 800 x 4, not 1024 x 3 + 128), as fixed-step integrated gradients splits
        passes, done = -(-total_rows // best), 0
        for i in range(passes):
            k = -(-(total_rows - done) // (passes - i))
            one_pass(full[0][:k], tuple(a[:k] for a in full[1]), full[2][:k])
            done += k
        _sync(x)

    return run, best, best_rate


#: fused kernels that do a layer's matrix products inside one op ``FlopCounterMode`` has no
#: formula for (oneDNN's RNNs, the transformer fast path): a count that meets one is too low
_FUSED = ("rnn", "lstm", "gru_cell", "transformer_encoder_layer", "multi_head_attention")


def flops_per_row(model, x, target, backward: bool = True, rows: int = 4) -> float | None:
    """Floating-point operations one limit row costs, as torch's ``FlopCounterMode`` counts them
    over a pass of ``rows`` rows: matrix products and convolutions (element-wise work and
    normalisation count 0); None when the pass ran a fused kernel it cannot count (:data:`_FUSED`)."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    class _Ops(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.seen: set[str] = set()   # the names of the operators that ran

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.seen.add(func.__name__)
            return func(*args, **(kwargs or {}))

    one_pass, batch = _pass(model, x, target, backward, noisy=False, leaf_view=True)
    counter, ops = FlopCounterMode(display=False), _Ops()
    with counter, ops:
        one_pass(*batch(rows))
    if any(f in op for op in ops.seen for f in _FUSED):
        return None
    return counter.get_total_flops() / rows


@contextlib.contextmanager
def at_threads(threads: int) -> Iterator[None]:
    """Run the block at ``threads`` torch threads, then restore the count it had."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@functools.cache
def matmul_rate(threads: int, n: int = 2048, repeats: int = 5) -> float:
    """This host's float32 matrix-multiply rate (FLOP/s) at ``threads`` torch threads: the best
    of ``repeats`` products of two ``n x n`` matrices, the most a CPU's cores reach (a roofline
    for work that :func:`flops_per_row` counts)."""
    with at_threads(threads):
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        best = min(timed(lambda: a @ b, a) for _ in range(repeats))
    return 2 * n**3 / best


def compute_share(model, x, target, backward: bool, rows_per_s: float) -> str:
    """``MFLOP a row: GFLOP/s, share of this host's matmul rate`` for a limit running at
    ``rows_per_s`` on the CPU; empty on CUDA or when nothing countable runs."""
    if x.is_cuda:
        return ""
    flops = flops_per_row(model, x, target, backward)
    if flops is None:
        return "; its FLOPs are not counted (a fused kernel)"
    if flops <= 0:
        return ""
    rate, peak = flops * rows_per_s, matmul_rate(torch.get_num_threads())
    return (f"; {flops / 1e6:,.4g} MFLOP a row in matmuls and convolutions: {rate / 1e9:.1f} "
            f"GFLOP/s, {rate / peak:.2f} of this host's {peak / 1e9:.0f} GFLOP/s float32 "
            "matmul")


class Limits(dict):
    """``{pass kind: run(rows)}`` for one model, each limit measured on first use (and its pass
    size printed): a run that needs only forward+backward never measures the forward limit."""

    def __init__(self, name: str, model, x, target, job_rows: int) -> None:
        super().__init__()
        self.name, self.model, self.x, self.target, self.job_rows = \
            name, model, x, target, job_rows

    def __missing__(self, kind: str) -> Callable[[int], None]:
        run, size, rate = limit_job(self.model, self.x, self.target, self.job_rows,
                                    backward=kind != "forward", noisy=kind == NOISY)
        share = compute_share(self.model, self.x, self.target, kind != "forward", rate)
        print(f"{self.name}: the {kind} limit runs {size} rows per pass ({rate:,.0f} rows/s"
              f"{share})", flush=True)
        self[kind] = run
        return run


def candidates(method: str, batch: int, cap: int, sizes=SIZES) -> list[tuple[int, int]]:
    """``(captum value, per-pass multiple)`` pairs for the best-fixed search over ``sizes`` rows.

    captum's unit is rows for ``internal_batch_size`` and a multiple of the batch for
    ``nt_samples_batch_size`` / ``perturbations_per_eval``; a pass holds ``multiple x batch``
    rows, with ``multiple`` clamped to [1, cap] (``cap``: steps, noisy copies or windows per
    sample). Sizes that give the same multiple are the same job: only the first is kept.
    """
    if method not in BATCH_OPTION:
        return []
    out, seen = [], set()
    for rows in sizes:
        k = min(cap, max(1, rows // batch))
        if k not in seen:
            seen.add(k)
            out.append((rows if method == "integrated_gradients" else k, k))
    return out


def best_fixed(call: Callable[[int], Callable[[], object]], cands: list[tuple[int, int]],
               ours: float, x: torch.Tensor) -> tuple[int, float] | None:
    """captum with the best fixed batch value: ``(value, median seconds)``, or None (no option).

    Values are tried in increasing order, each as the median of 2 runs (a third when the two
    differ by more than 10%). The search stops once two values in a row are more than 15% slower
    than the best so far and than ``ours`` (a pass's cost per row only grows past the cache).
    """
    import statistics

    best, best_t, worse = None, float("inf"), 0
    for value, _ in cands:
        run = call(value)
        times = [timed(run, x), timed(run, x)]
        if max(times) > 1.1 * min(times):
            times.append(timed(run, x))
        t = statistics.median(times)
        if t < best_t:
            best, best_t, worse = value, t, 0
        elif t > 1.15 * min(best_t, ours):
            worse += 1
            if worse == 2:
                break
    return None if best is None else (best, best_t)


def captum_call(method: str, model, x, target, options: dict,
                value: int | None = None) -> Callable[[], object]:
    """captum's ``method`` on ``(x, target)`` as a user calls it; ``value`` sets
    ``BATCH_OPTION[method]`` (None: captum's default). ``options`` are the benchmark's (n_steps,
    n_samples, nt_samples, and for integrated gradients on float inputs ``baselines``: captum's
    zeros when absent); occlusion uses the same windows as ours."""
    from captum import attr

    text = x.dtype == torch.int64
    base = torch.zeros_like(x)
    if method == "integrated_gradients":
        if text:
            return functools.partial(
                attr.LayerIntegratedGradients(model, _embedding(model)).attribute, x,
                baselines=base, target=target, n_steps=options["n_steps"],
                internal_batch_size=value, return_convergence_delta=True)
        return functools.partial(attr.IntegratedGradients(model).attribute, x, target=target,
                                 baselines=options.get("baselines"),
                                 n_steps=options["n_steps"], internal_batch_size=value,
                                 return_convergence_delta=True)
    if method == "occlusion":
        win, stride = occlusion_windows(model, x)
        return functools.partial(attr.Occlusion(model).attribute, x, sliding_window_shapes=win,
                                 strides=stride, baselines=0, target=target,
                                 perturbations_per_eval=value or 1)
    if method == "saliency" and text:
        lga = attr.LayerGradientXActivation(model, _embedding(model), multiply_by_inputs=False)
        return lambda: lga.attribute(x, target=target).abs()
    if method == "deeplift":
        dl = (attr.LayerDeepLift(model, _embedding(model)) if text else attr.DeepLift(model))
        return functools.partial(dl.attribute, x, baselines=base, target=target)
    forward, inp, extra = model, x, None
    if text:   # noise on embedding outputs, fed back through a hook (the ids keep the pad mask)
        from explain.attribution.prepare import EmbeddingForward

        forward, extra = EmbeddingForward(model, _embedding(model)), (x,)
        with torch.no_grad():
            inp = _embedding(model)(x)
    if method == "saliency":
        return functools.partial(attr.Saliency(forward).attribute, inp, target=target)
    if method == "gradient_shap":
        return functools.partial(attr.GradientShap(forward).attribute, inp,
                                 baselines=torch.zeros_like(inp), target=target,
                                 n_samples=options["n_samples"], additional_forward_args=extra)
    if method == "smoothgrad":
        stdev = 0.15 * float(inp.max() - inp.min())   # ours' default noise, same cost
        return functools.partial(
            attr.NoiseTunnel(attr.Saliency(forward)).attribute, inp, nt_type="smoothgrad",
            nt_samples=options["nt_samples"], stdevs=stdev, nt_samples_batch_size=value,
            target=target, additional_forward_args=extra)
    raise ValueError(f"no captum comparison for {method!r}")


def occlusion_windows(model, x) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Ours' default occlusion windows, in captum's input space (one token for token ids)."""
    if x.dtype == torch.int64:
        return (1,), (1,)
    from types import SimpleNamespace

    from explain.attribution.methods._masks import default_window

    return default_window(SimpleNamespace(x=x, token_ids=None))  # type: ignore[arg-type]


def completeness_error(model, x, target) -> float:
    """Median |sum(attr) - (f(x) - f(0))| / |f(x) - f(0)| of captum's DeepLift (or LayerDeepLift
    on token ids) with zero baselines: 0 when its rules cover the model, large when they do not."""
    from captum import attr

    text = x.dtype == torch.int64
    dl = attr.LayerDeepLift(model, _embedding(model)) if text else attr.DeepLift(model)
    base = torch.zeros_like(x)
    values, delta = dl.attribute(x, baselines=base, target=target,
                                 return_convergence_delta=True)
    with torch.no_grad():
        gap = (model(x) - model(base)).gather(1, target[:, None]).reshape(-1)
    return float((delta.detach().abs() / gap.abs().clamp_min(1e-6)).median())
