"""The out-of-memory back-off of the attribution runner: :func:`run_chunked` walks the inputs
in chunks and, when a pass runs out of memory, halves the chunk and the pass that really ran,
then retries; :class:`Backoff` records what fit, so the runner (:mod:`.base`) remembers that
pass size as the plan and the next call on the same model and shape starts there.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from explain.errors import AttributionError

if TYPE_CHECKING:
    from explain.attribution.batching import BatchPlan

__all__ = ["Backoff", "run_chunked", "call_rows", "OUT_OF_MEMORY", "is_oom", "one_row_oom"]

OUT_OF_MEMORY = "out of memory"   # the reason of a plan cut to the pass that fit after one


def call_rows(inputs: tuple) -> int:
    """Rows of a module call: the first dimension of its first positional tensor (0 when it
    has none, e.g. a call by keywords: unknown).

    Examples
    --------
    >>> call_rows((torch.zeros(5, 3), 2)), call_rows((7,))
    (5, 0)
    """
    first = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
    return int(first.shape[0]) if first is not None and first.dim() > 0 else 0


@dataclass
class Backoff:
    """What :func:`run_chunked` learned from out-of-memory errors; it fills this as it runs.

    With a ``model``, a forward pre-hook counts the rows of each call of it (each pass): a
    back-off then halves the largest pass that really ran, which can be smaller than the rows
    asked for (12 samples x 8 steps of integrated gradients under a 1024-row plan are one
    96-row pass: the retry runs at 48 rows, not 512). Without one a pass is taken to be the
    rows asked for.

    Attributes
    ----------
    model : the module whose calls are the passes, or None.
    rows : rows per pass since the last out-of-memory error; 0 while there was none.
    fitted : the largest pass, in rows, that completed since the last out-of-memory error.
    asked : the rows per pass the running call of ``fn`` may use (its ``rows``).
    largest : the largest pass the running call of ``fn`` started (0: none seen, or only
        calls whose rows are unknown; then a pass is taken to be ``asked`` rows).

    Examples
    --------
    >>> from explain.attribution.batching import BatchPlan
    >>> def work(lo, hi, rows):
    ...     if rows > 8:
    ...         raise RuntimeError("CUDA out of memory")
    ...     return hi - lo
    >>> backoff, notes = Backoff(), []
    >>> run_chunked(work, 4, chunk=4, rows=32, warnings=notes, backoff=backoff)
    [1, 1, 1, 1]
    >>> backoff.capped(BatchPlan(rows=32, reason="cache")).rows
    8
    """

    model: nn.Module | None = None
    rows: int = 0
    fitted: int = 0
    asked: int = 0
    largest: int = 0

    def _saw(self, _m: nn.Module, inputs: tuple) -> None:
        self.largest = max(self.largest, call_rows(inputs))

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Count the rows of each call of ``model`` while the block runs."""
        handle = None
        if self.model is not None:
            with contextlib.suppress(RuntimeError, AttributeError):  # e.g. a ScriptModule
                handle = self.model.register_forward_pre_hook(self._saw)
        try:
            yield
        finally:
            if handle is not None:
                handle.remove()

    def begin(self, rows: int) -> None:
        """A call of ``fn`` at ``rows`` rows per pass starts."""
        self.asked, self.largest = rows, 0

    def ran(self) -> int:
        """The largest pass of the running call, no larger than it was allowed."""
        return min(self.asked, self.largest) if self.largest else self.asked

    def failed(self) -> int:
        """The running call ran out of memory: the rows to retry at (half its largest pass)."""
        self.rows, self.fitted = max(1, self.ran() // 2), 0
        return self.rows

    def succeeded(self) -> None:
        """The running call completed: after an out-of-memory error, its passes fit (the
        largest as it really ran, also when that was more than asked)."""
        if self.rows:
            self.fitted = max(self.fitted, self.largest or self.asked)

    def capped(self, plan: BatchPlan) -> BatchPlan:
        """``plan`` cut to the largest pass that fit since the last out-of-memory error (to
        the rows of the retry while none completed yet), reason ``"out of memory"``; ``plan``
        itself when there was no such error."""
        if not self.rows:
            return plan
        return dataclasses.replace(plan, rows=max(1, min(plan.rows, self.fitted or self.rows)),
                                   reason=OUT_OF_MEMORY)


def is_oom(err: BaseException) -> bool:
    """Whether ``err`` says the device ran out of memory (CUDA's error, or the allocator's
    message on any device)."""
    msg = str(err).lower()
    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in msg or (
        "can't allocate memory" in msg)


def one_row_oom() -> AttributionError:
    """The error for a pass of one row that ran out of memory (nothing smaller to retry)."""
    return AttributionError(
        "Attribution ran out of memory with one sample per pass. Free memory, "
        "lower 'n_steps'/'n_samples', or move the model to CPU.")


def run_chunked(fn: Callable[[int, int, int], Any], n: int, chunk: int, rows: int,
                warnings: list[str], backoff: Backoff | None = None) -> list[Any]:
    """Call ``fn(lo, hi, rows)`` over ``range(n)`` in chunks; on an out-of-memory error
    halve the chunk that ran (``hi - lo`` samples) and the rows of the largest pass that ran
    (see :class:`Backoff`, which records what fit) and retry.

    Returns the list of ``fn`` results in order. Raises :class:`AttributionError` when even one
    sample in a pass of one row runs out of memory.
    """
    outs, lo = [], 0
    chunk, rows = max(1, chunk), max(1, rows)
    backoff = Backoff() if backoff is None else backoff
    with backoff.watching():
        while lo < n:
            hi = min(n, lo + chunk)
            backoff.begin(rows)
            try:
                outs.append(fn(lo, hi, rows))
            except (torch.cuda.OutOfMemoryError, RuntimeError) as err:
                if not is_oom(err):
                    raise
                if hi - lo == 1 and backoff.ran() == 1:
                    raise one_row_oom() from err
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                chunk, rows = max(1, (hi - lo) // 2), backoff.failed()  # halve what ran
                warnings.append(f"out of memory: retried with {chunk} samples and {rows} rows "
                                "per pass")
                continue
            backoff.succeeded()
            lo = hi
    return outs
