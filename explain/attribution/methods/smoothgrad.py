"""SmoothGrad: saliency averaged over noisy copies of each input (Smilkov et al. 2017).

captum's ``NoiseTunnel`` over ``Saliency`` computes it, with two differences that make a
sample's map depend on nothing but the sample and the seed: the noise is drawn per sample
(:func:`~._gradients.noise_draws`; captum draws a whole batch in one call, so the draws
depended on the chunking) and its scale is each sample's own value range, as in the paper
(``sigma = stdev_spread * (x_max - x_min)`` of that input; the chunk's range made a sample's
noise depend on its chunk-mates). The copies run through captum's ``Saliency`` in passes of
the planned rows, and are averaged as ``NoiseTunnel`` averages them.
"""

from __future__ import annotations

import torch
from captum import attr

from explain._validation import check_float, check_int
from explain.attribution.base import Chunk, Explainer, Job, register_explainer
from explain.attribution.batching import expand_args
from explain.attribution.methods._gradients import (
    average_copies,
    copies_chunk,
    fast_gradients,
    noise_draws,
    per_copy,
    sample_seeds,
)
from explain.attribution.methods._masks import keep_padding

__all__ = ["SmoothGrad", "value_ranges"]


@register_explainer("smoothgrad")
class SmoothGrad(Explainer):
    """Mean saliency over ``nt_samples`` (16) copies of each sample with Gaussian noise of
    standard deviation ``stdev_spread`` (0.15) times the sample's own value range (max - min;
    ``stdev_spread`` itself for a constant sample); ``seed`` (0) fixes the noise.

    Each sample's noise comes from its own generator, seeded from ``seed`` and the sample's
    values, so a sample gets the same map alone or in any batch, at any ``batch_size``.
    Padded sequences (``[batch, time, features]`` with all-zero trailing frames) keep their
    padding: noise only on valid frames (whose values alone set the range), the model sees
    each copy at its sequence's length, and padding frames get exactly 0 (as with saliency).

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),
    ...                             torch.nn.Linear(4, 2)).eval()
    >>> x = torch.tensor([[1.0, 2.0, 3.0], [-4.0, 0.0, 4.0]])
    >>> both = SmoothGrad(model).explain(x, target=0, seed=1).values
    >>> alone = SmoothGrad(model).explain(x[1:], target=0, seed=1).values
    >>> torch.allclose(both[1:], alone)
    True
    """

    uses_baselines = False

    def evaluations(self, job: Job, options: dict) -> int:
        return check_int(options.get("nt_samples", 16), "nt_samples", owner=self.name, min=1)

    def chunk_size(self, rows: int, job: Job, options: dict) -> int:
        return copies_chunk(rows, job.x, self.evaluations(job, options), job.plan)

    def _attribute(self, job: Job, chunk: Chunk, rows: int, nt_samples: int = 16,
                   stdev_spread: float = 0.15, seed: int = 0) -> tuple[torch.Tensor, None]:
        spread = float(check_float(stdev_spread, "stdev_spread", owner=self.name, min=0.0) or 0)
        seed = check_int(seed, "seed", owner=self.name, min=0)
        n, k = chunk.x.shape[0], nt_samples
        kept = keep_padding(job, chunk.x, chunk.args)
        with torch.no_grad():
            stdevs = [spread * r or spread for r in value_ranges(chunk.x, kept.lengths).tolist()]
            noise, _ = noise_draws(chunk.x, k, stdevs, sample_seeds(seed, chunk.x, kept.lengths),
                                   lengths=kept.lengths)
        target, args = chunk.target.repeat_interleave(k), per_copy(kept.args, n, k)
        saliency = fast_gradients(attr.Saliency(kept.forward))

        def one_pass(copies: torch.Tensor, part: slice) -> torch.Tensor:
            return saliency.attribute(copies, target=target[part], abs=True,
                                      additional_forward_args=expand_args(args, part, n * k)
                                      or None)

        return average_copies(chunk.x, noise, k, rows, one_pass), None

def value_ranges(x: torch.Tensor, lengths: list[int] | None = None) -> torch.Tensor:
    """``[batch]``: each sample's max - min, over its valid frames when ``lengths`` are given
    (0 for a sequence without any).

    Examples
    --------
    >>> x = torch.tensor([[[1.0], [3.0], [0.0]], [[-2.0], [0.0], [0.0]]])
    >>> value_ranges(x).tolist(), value_ranges(x, [2, 1]).tolist()
    ([3.0, 2.0], [2.0, 0.0])
    """
    if lengths is None:
        flat = x.detach().flatten(1)
        return flat.amax(1) - flat.amin(1)
    n_valid = torch.tensor(lengths, device=x.device)
    valid = torch.arange(x.shape[1], device=x.device)[None, :] < n_valid[:, None]  # [batch, time]
    valid = valid.reshape(*valid.shape, *([1] * (x.dim() - 2))).expand_as(x)
    hi = torch.where(valid, x.detach(), -torch.inf).flatten(1).amax(1)
    lo = torch.where(valid, x.detach(), torch.inf).flatten(1).amin(1)
    return torch.where(n_valid > 0, hi - lo, torch.zeros_like(hi))
