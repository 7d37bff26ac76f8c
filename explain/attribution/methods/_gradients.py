"""What captum's gradient methods share here: one backward pass per batch, and noise drawn
per sample.

captum's ``compute_gradients`` differentiates ``torch.unbind(outputs)``: autograd then builds
one ``ones_like`` seed per row and stacks them again, a Python-level cost of ~6 us per row
that dominated integrated gradients on small models (measured: 6,400 rows of the zoo MLP spent
~40 ms there against ~8 ms for the forward and backward passes themselves). The gradient of
``outputs.sum()`` is the same tensor exactly (the sum's backward seeds every row with 1, as
the unbound tuple does), so :func:`summed_gradients` is a drop-in for captum's
``gradient_func``: the documented seam captum itself uses to swap the gradient (e.g. in
``LayerIntegratedGradients``). The attribution algorithms stay captum's.

Why noise is drawn per sample (smoothgrad, gradient_shap). captum's ``NoiseTunnel`` draws the
noise of a whole batch in one ``torch.normal`` call and ``InputBaselineXGradient`` its
interpolation points in one ``np.random.uniform`` call, so under a fixed seed a sample's draws
depend on which samples share its chunk, and the chunks depend on the batch plan (threads,
memory, ``batch_size``, a first call's probe). :func:`noise_draws` draws each sample's copies
from its own generator, seeded by :func:`sample_seeds` from the seed and the sample's values:
a sample's attribution is then a function of the sample, its baseline and target, and the
seed, the same alone, at any position of any batch, under any chunking (up to the float
rounding of passes of different sizes). Two equal samples get the same draws.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from captum._utils.common import _run_forward

from explain.attribution.batching import BatchPlan

__all__ = ["summed_gradients", "fast_gradients", "sample_seeds", "noise_draws",
           "per_copy", "average_copies", "copies_chunk"]

T = TypeVar("T")

_COPIES_BYTES = 64 * 2**20   # the most a chunk's noisy copies (then their attributions) hold


def summed_gradients(forward_fn: Callable, inputs: torch.Tensor | tuple[torch.Tensor, ...],
                     target_ind: Any = None, additional_forward_args: Any = None, *,
                     keep: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, ...]:
    """captum's ``compute_gradients`` with a single seed: ``d sum(outputs) / d inputs``.

    ``keep``, when given, receives the detached outputs (the selected target logits) of the
    pass, so a caller can reuse them instead of running the model again.
    """
    with torch.autograd.set_grad_enabled(True):
        outputs = _run_forward(forward_fn, inputs, target_ind, additional_forward_args)
        if outputs[0].numel() != 1:
            raise ValueError("Target not provided when necessary, cannot take gradient with "
                             "respect to multiple outputs.")
        if keep is not None:
            keep.append(outputs.detach())
        return torch.autograd.grad(outputs.sum(), inputs)


def fast_gradients(method: T) -> T:
    """Give a captum gradient attribution object (and any it wraps) :func:`summed_gradients`."""
    seen: Any = method
    while seen is not None:
        if hasattr(seen, "gradient_func"):
            seen.gradient_func = summed_gradients
        seen = getattr(seen, "attribution_method", None)   # NoiseTunnel wraps another method
    return method


def sample_seeds(seed: int, x: torch.Tensor, lengths: list[int] | None = None) -> list[int]:
    """One seed per sample (64 bits; a CPU generator uses the low 32), from ``seed`` and the
    sample's own values.

    A sample's noise then depends on nothing but the sample and ``seed``: not on its position
    in the batch, nor on which samples share its chunk, nor on how many frames of padding its
    batch adds (``lengths``: the valid frames of each padded sequence, only those are hashed).

    Examples
    --------
    >>> x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> sample_seeds(0, x)[1] == sample_seeds(0, x[1:])[0] != sample_seeds(1, x[1:])[0]
    True
    """
    rows = x.detach().cpu().contiguous()
    raw = rows.view(rows.shape[0], -1).view(torch.uint8).numpy()      # [batch, bytes]
    per_frame = raw.shape[1] // max(1, rows.shape[1]) if rows.dim() > 1 else raw.shape[1]
    head = hashlib.blake2b(f"{int(seed)}|{rows.dtype}|{tuple(rows.shape[2:])}|".encode(),
                           digest_size=8)
    seeds = []
    for i in range(raw.shape[0]):
        h = head.copy()
        h.update((raw[i] if lengths is None else raw[i, :lengths[i] * per_frame]).data)
        seeds.append(int.from_bytes(h.digest(), "little"))
    return seeds


def noise_draws(x: torch.Tensor, copies: int, stdevs: list[float], seeds: list[int], *,
                lengths: list[int] | None = None, alphas: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gaussian noise for ``copies`` copies of each sample, and optionally one interpolation
    point per copy, each sample's drawn from its own generator seeded with ``seeds[i]``.

    Returns ``noise`` ``[batch * copies, *sample]`` (rows in captum's ``repeat_interleave``
    order: the copies of sample 0 first) with standard deviation ``stdevs[i]`` for sample
    ``i``, and ``alphas`` ``[batch * copies]`` uniform in [0, 1) (or ``None``). The noise is
    drawn as captum's ``NoiseTunnel`` draws it for one sample (``N(0, 1) * stdev``, then the
    uniform points, drawn in float64 as numpy's are), so with the generator of sample ``i``
    seeded like torch's global one the draws are the same numbers. Padded sequences
    (``lengths``) get noise on their valid frames only, drawn for those frames alone.

    Examples
    --------
    >>> x = torch.zeros(2, 3)
    >>> noise, alphas = noise_draws(x, 4, [1.0, 0.5], [7, 7], alphas=True)
    >>> noise.shape, alphas.shape, torch.equal(noise[:4] * 0.5, noise[4:])
    (torch.Size([8, 3]), torch.Size([8]), True)
    """
    n, dev = x.shape[0], x.device
    noise = torch.zeros((n * copies, *x.shape[1:]), dtype=x.dtype, device=dev)
    wide = torch.float32 if dev.type == "mps" else torch.float64      # MPS has no float64
    points = torch.empty(n * copies, dtype=wide, device=dev) if alphas else None
    gen = torch.Generator(device=dev)
    for i, seed in enumerate(seeds):
        gen.manual_seed(seed)
        rows = slice(i * copies, (i + 1) * copies)
        if lengths is None:                                            # rows: contiguous
            torch.randn(noise[rows].shape, generator=gen, out=noise[rows])
        else:
            noise[rows, :lengths[i]] = torch.randn((copies, lengths[i], *x.shape[2:]),
                                                   generator=gen, dtype=x.dtype, device=dev)
        if points is not None:
            torch.rand(copies, generator=gen, dtype=wide, device=dev, out=points[rows])
    per_sample = noise.view(n, -1)
    per_sample.mul_(torch.tensor(stdevs, dtype=x.dtype, device=dev)[:, None])  # N(0,1) * stdev
    return noise, None if points is None else points.to(x.dtype)


def per_copy(args: tuple, batch: int, copies: int) -> tuple:
    """``args`` for ``copies`` copies of each sample: every tensor whose first dimension is
    ``batch`` is repeated like the inputs (``repeat_interleave``); other values pass as they
    are (as :func:`~explain.attribution.batching.expand_args` selects them)."""
    return tuple(a.repeat_interleave(copies, dim=0)
                 if isinstance(a, torch.Tensor) and a.dim() > 0 and a.shape[0] == batch else a
                 for a in args)


def average_copies(x: torch.Tensor, noise: torch.Tensor, copies: int, rows: int,
                   attribute: Callable[[torch.Tensor, slice], torch.Tensor]) -> torch.Tensor:
    """Each sample's mean attribution over its copies ``x_i + noise``, ``[batch, *sample]``.

    ``noise`` is ``[batch * copies, *sample]`` from :func:`noise_draws`; ``attribute(part,
    rows)`` attributes the copies ``part`` (rows ``rows`` of the copies) in one pass of at most
    ``rows`` copies. One buffer serves throughout: the noise becomes the copies (in place),
    each pass's copies become their attributions, and those are averaged as captum's
    ``NoiseTunnel`` averages them (``sum * 1 / nt_samples`` over each sample's copies).

    Examples
    --------
    >>> x = torch.tensor([[1.0], [2.0]])
    >>> noise = torch.tensor([[0.5], [-0.5], [1.0], [3.0]])    # 2 copies of each sample
    >>> average_copies(x, noise, 2, 3, lambda part, rows: part ** 2).tolist()
    [[1.25], [17.0]]
    """
    buf = noise.view(x.shape[0], copies, *x.shape[1:])
    with torch.no_grad():
        buf.add_(x.detach()[:, None])                       # the copies, rows of sample 0 first
    buf = buf.view_as(noise)
    step = max(1, int(rows))
    for lo in range(0, buf.shape[0], step):
        part = slice(lo, min(buf.shape[0], lo + step))
        values = attribute(buf[part], part)
        with torch.no_grad():
            buf[part] = values
    return buf.view(x.shape[0], copies, *x.shape[1:]).sum(dim=1) * 1 / copies


def copies_chunk(rows: int, x: torch.Tensor, copies: int, plan: BatchPlan | None = None) -> int:
    """Samples per chunk of a noisy-copies method (smoothgrad, gradient_shap): the passes of a
    chunk hold ``rows`` rows whatever its samples, while each chunk pays a fixed cost (seeding
    and drawing, captum's set-up, the padding check: ~0.6 ms measured on the zoo cnn, whose
    16 copies of 2 samples fill a 32-row pass: 32 chunks, 6% of the job). So a chunk holds as
    many samples as its ``copies`` of each fit in ``_COPIES_BYTES`` (at most an eighth of the
    ``plan``'s memory budget when it has one), and at least one pass's worth (``rows // copies``).

    Examples
    --------
    >>> x = torch.zeros(64, 1, 28, 28)                 # 3 KiB a sample, 50 KiB for 16 copies
    >>> copies_chunk(32, x, 16), copies_chunk(32, torch.zeros(8, 3, 224, 224), 16)
    (1337, 6)
    >>> copies_chunk(32, x, 16, BatchPlan(rows=32, budget=2**20))   # one pass's worth
    2
    """
    per_sample = max(1, copies * x[0].numel() * x.element_size())
    budget = plan.budget if plan is not None else 0
    room = _COPIES_BYTES if budget <= 0 else min(_COPIES_BYTES, budget // 8)
    return max(1, int(rows) // max(1, copies), room // per_sample)
