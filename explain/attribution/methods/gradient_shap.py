"""GradientSHAP: expected gradients between each sample and its baseline, with input noise.

captum's ``GradientShap`` is ``NoiseTunnel`` over ``InputBaselineXGradient``: ``n_samples``
noisy copies ``x + N(0, stdevs)`` of each sample, each with a random point ``alpha`` in [0, 1),
attributed as ``(x_noisy - b) * grad f(b + alpha (x_noisy - b))`` and averaged. The same
computation runs here with two differences:

- each sample is interpolated towards its own baseline. captum draws each copy's baseline at
  random from the rows of ``baselines`` (a baseline *distribution*); here ``baselines`` is
  broadcast to the inputs, one per sample, so drawing across rows would pair a sample with
  another sample's baseline: the result would depend on which samples share a chunk, and a
  padded sequence would be interpolated towards a longer sequence's baseline (a packed RNN
  then runs, and attributes, frames that are padding);
- the noise and the points are drawn per sample (:func:`~._gradients.noise_draws`; captum
  draws them for a whole batch, with torch and numpy), so a sample's values depend on
  nothing but the sample, its baseline and target, and the seed: not on the chunking.

The points are scaled with captum's ``_scale_input`` and differentiated with its forward
helpers (:func:`~._gradients.summed_gradients`), in passes of the planned rows; given the same
draws, one sample's values equal captum's ``GradientShap`` bit for bit.
"""

from __future__ import annotations

import torch
from captum.attr._core.gradient_shap import _scale_input

from explain._validation import check_float, check_int
from explain.attribution.base import Chunk, Explainer, Job, register_explainer
from explain.attribution.batching import expand_args
from explain.attribution.methods._gradients import (
    average_copies,
    copies_chunk,
    noise_draws,
    per_copy,
    sample_seeds,
    summed_gradients,
)
from explain.attribution.methods._masks import keep_padding

__all__ = ["GradientShap"]


@register_explainer("gradient_shap")
class GradientShap(Explainer):
    """SHAP values approximated by gradients at random points between baseline and input.

    Options: ``n_samples`` (16), ``stdevs`` (0.0, Gaussian noise on the input), ``seed`` (0,
    fixes the noise and the interpolation points). Each sample is interpolated towards its own
    baseline (the job's baselines, zeros by default), with draws from its own generator seeded
    from ``seed`` and the sample's values: the same values alone or in any batch, at any
    ``batch_size``. Padded sequences keep their padding: no noise on trailing all-zero frames,
    which get exactly 0.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(3, 2).eval()          # linear: exactly (x - 0) * w
    >>> x = torch.tensor([[1.0, 2.0, 3.0]])
    >>> a = GradientShap(model).explain(x, target=1, n_samples=4)
    >>> torch.allclose(a.values, x * model.weight[1].detach())
    True
    """

    def evaluations(self, job: Job, options: dict) -> int:
        return check_int(options.get("n_samples", 16), "n_samples", owner=self.name, min=1)

    def chunk_size(self, rows: int, job: Job, options: dict) -> int:
        return copies_chunk(rows, job.x, self.evaluations(job, options), job.plan)

    def _attribute(self, job: Job, chunk: Chunk, rows: int, n_samples: int = 16,
                   stdevs: float = 0.0, seed: int = 0) -> tuple[torch.Tensor, None]:
        stdev = float(check_float(stdevs, "stdevs", owner=self.name, min=0.0) or 0)
        seed = check_int(seed, "seed", owner=self.name, min=0)
        n, k = chunk.x.shape[0], n_samples
        kept = keep_padding(job, chunk.x, chunk.args)
        with torch.no_grad():
            noise, alphas = noise_draws(chunk.x, k, [stdev] * n,
                                        sample_seeds(seed, chunk.x, kept.lengths),
                                        lengths=kept.lengths, alphas=True)
        assert alphas is not None                     # asked for: alphas=True
        target, args = chunk.target.repeat_interleave(k), per_copy(kept.args, n, k)
        baselines = chunk.baselines.detach()

        def one_pass(copies: torch.Tensor, part: slice) -> torch.Tensor:
            base = baselines[torch.arange(part.start, part.stop, device=copies.device) // k]
            scaled = _scale_input(copies, base, alphas[part])
            grads = summed_gradients(kept.forward, (scaled,), target[part],
                                     expand_args(args, part, n * k) or None)
            return (copies - base) * grads[0]

        return average_copies(chunk.x, noise, k, rows, one_pass), None
