"""SmoothGrad: saliency averaged over noisy copies of the input (captum ``NoiseTunnel``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from captum import attr

from explain._validation import check_float, check_int
from explain.attribution.base import Chunk, Explainer, Job, register_explainer
from explain.attribution.methods._gradients import fast_gradients

__all__ = ["SmoothGrad"]


@register_explainer("smoothgrad")
class SmoothGrad(Explainer):
    """Mean saliency over ``nt_samples`` (16) copies with Gaussian noise of standard deviation
    ``stdev_spread`` (0.15) times the chunk's value range; ``seed`` (0) fixes the noise.

    Padded sequences (``[batch, time, features]`` with all-zero trailing frames) keep their
    padding: the noise on those frames is zeroed before the model sees it, so each copy keeps
    its sequence's length and padding frames get exactly 0 (as with saliency)."""

    uses_baselines = False

    def evaluations(self, job: Job, options: dict) -> int:
        return check_int(options.get("nt_samples", 16), "nt_samples", owner=self.name, min=1)

    def _attribute(self, job: Job, chunk: Chunk, rows: int, nt_samples: int = 16,
                   stdev_spread: float = 0.15, seed: int = 0) -> tuple[torch.Tensor, None]:
        spread = float(check_float(stdev_spread, "stdev_spread", owner=self.name, min=0.0) or 0)
        stdev = spread * float(chunk.x.max() - chunk.x.min()) or spread
        per_pass = max(1, rows // chunk.x.shape[0])
        forward = _keep_padding(job, chunk.x)
        with torch.random.fork_rng(devices=[chunk.x.device] if chunk.x.is_cuda else []):
            torch.manual_seed(check_int(seed, "seed", owner=self.name, min=0))
            values = fast_gradients(attr.NoiseTunnel(attr.Saliency(forward))).attribute(
                chunk.x, nt_type="smoothgrad", nt_samples=nt_samples, stdevs=stdev,
                nt_samples_batch_size=min(per_pass, nt_samples), target=chunk.target,
                additional_forward_args=chunk.args or None)
        return values, None


def _keep_padding(job: Job, x: torch.Tensor) -> Callable[..., torch.Tensor]:
    """``job.forward``, or for padded sequences a forward that zeroes the noise on padding.

    Noise on trailing all-zero frames would make every copy a full-length sequence (a packed RNN
    reads its lengths from the padding), so the model would explain frames that are not there.
    captum's NoiseTunnel repeats each sample ``k`` times in a row (``repeat_interleave``).
    """
    if job.modality not in ("sequence", "audio") or x.dim() != 3 or job.token_ids is not None:
        return job.forward
    idx = torch.arange(x.shape[1], device=x.device)
    length = torch.where((x != 0).any(-1), idx + 1, torch.zeros_like(idx)).amax(1)
    valid = (idx[None, :] < length[:, None]).to(x.dtype)[..., None]    # [chunk, time, 1]
    if bool(valid.all()):
        return job.forward

    def forward(noisy: torch.Tensor, *args: Any) -> torch.Tensor:
        k = noisy.shape[0] // valid.shape[0]
        return job.forward(noisy * valid.repeat_interleave(k, dim=0), *args)

    return forward
