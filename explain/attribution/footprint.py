"""What one attribution pass writes and stores, measured: the input of :mod:`.batching`'s plan.

On a new (model, sample shape, device), a forward of 4 samples with gradients runs under
:func:`measure` (``prepare``'s footprint, cached per model). It counts, per row, the bytes
autograd keeps for backward (a ``saved_tensors_hooks`` context; forward outputs without grad),
the largest tensor of the pass (the largest result on the input's gradient path, whose gradient
backward materializes, or module output), and the nodes backward runs with their median result.
Results that do not grow with the rows (a transposed weight) are not on that path; counted per
row in 4 rows they would read as a quarter of a weight. :func:`~.batching.plan_rows` turns the
:class:`Footprint` into the rows per pass (why each of these sizes matters: :mod:`.batching`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from explain.attribution.backoff import call_rows

__all__ = ["Footprint", "measure"]


@dataclass(frozen=True)
class Footprint:
    """What one pass stored, per row (measured by :func:`measure`).

    Attributes
    ----------
    bytes_per_row : bytes kept for backward per row (forward outputs per row without grad).
    rows : rows in the pass measured (the largest pass of it).
    largest_per_row : bytes per row of the largest tensor of the pass (a module output or a
        result in its autograd graph); 0 when unknown, then ``bytes_per_row`` stands in.
    op_elements_per_row : median elements per row of the results backward computes on the way
        to the input (0 when unknown): the size of a typical operator of the pass.
    nodes : autograd nodes backward runs to reach the input (0 when unknown); each costs a
        fixed time per pass, whatever its rows.
    saved_largest_per_row : bytes per row of the largest single storage kept for backward
        (copies of a parameter's size left out; 0 when unknown): a fused kernel's workspace
        (oneDNN's LSTM) that backward reads as a whole.
    fitted_rows : when the measured forward ran out of memory and was retried on fewer rows,
        the rows that fit (the plan goes no higher); 0 when it did not.
    """

    bytes_per_row: int
    rows: int
    largest_per_row: int = 0
    op_elements_per_row: int = 0
    nodes: int = 0
    saved_largest_per_row: int = 0
    fitted_rows: int = 0


class _Meter:
    """Bytes stored per pass; a pass starts at each call of the root module and counts only
    when that call returned (a pass that ran out of memory half-way stored a part, or nothing)."""

    def __init__(self, skip: set[int], weights: set[int]) -> None:
        self.skip, self.weights = skip, weights
        # (rows, bytes stored, largest written, sizes in its autograd graph, largest stored)
        self.passes: list[tuple[int, int, int, _GraphSizes, int]] = []
        self._seen: dict[int, int] = {}
        self._rows = 0
        self._largest = 0
        self._saved = 0
        self._graph = _GraphSizes()
        self._returned = False

    def start(self, _m: nn.Module, inputs: tuple) -> None:
        self.close()
        self._rows = call_rows(inputs) or 1   # a call by keywords: taken as one row

    def store(self, t: torch.Tensor) -> None:
        try:
            storage = t.untyped_storage()
        except (RuntimeError, NotImplementedError):  # pragma: no cover - exotic tensors
            return
        ptr = storage.data_ptr()
        if ptr not in self.skip:
            self._seen[ptr] = storage.nbytes()
            if t.numel() not in self.weights:   # a kernel's own copy of a weight: not per row
                self._saved = max(self._saved, storage.nbytes())

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        """The pack hook of every tensor autograd saves: counted, and kept detached. Autograd
        re-attaches a saved output's node when it unpacks it, so detached is the same to it;
        kept as it came (with its ``grad_fn``), a saved output would hold the node that holds
        it, a cycle that nothing frees when no backward runs (the 4-sample footprint)."""
        self.store(t)
        return t.detach() if t.requires_grad else t

    def output(self, _m: nn.Module, _i: tuple, out: Any) -> None:
        for o in out if isinstance(out, tuple) else (out,):
            if isinstance(o, torch.Tensor):
                self._largest = max(self._largest, o.numel() * o.element_size())
                if not o.requires_grad:
                    self.store(o)

    def finished(self, _m: nn.Module, _i: tuple, out: Any) -> None:
        """The root module returned: the sizes in its autograd graph."""
        graph = _graph_sizes(out, self.skip)
        self._largest = max(self._largest, graph.largest)
        self._graph = graph
        self._returned = True

    def close(self) -> None:
        """End the pass; it counts only if the root module returned (what autograd saves after
        that, e.g. captum's selection of the target logit, still belongs to it)."""
        if self._rows and self._returned:
            self.passes.append((self._rows, sum(self._seen.values()), self._largest,
                                self._graph, self._saved))
        self._seen, self._rows, self._largest, self._graph = {}, 0, 0, _GraphSizes()
        self._saved = 0
        self._returned = False

    def footprint(self) -> Footprint:
        self.close()
        if not self.passes:
            return Footprint(bytes_per_row=0, rows=0)
        # passes of a few rows (captum's end-point forward for the delta) are dominated by
        # tensors that do not grow with the rows (weights, transposes): only the large ones count
        big = [p for p in self.passes if 2 * p[0] >= max(q[0] for q in self.passes)]
        rows, stored, _, graph, _ = max(big, key=lambda p: (p[1] / p[0], p[0]))
        largest = max(-(-p[2] // p[0]) for p in big)
        saved = max(-(-p[4] // p[0]) for p in big)
        return Footprint(bytes_per_row=-(-stored // rows), rows=rows, largest_per_row=largest,
                         op_elements_per_row=-(-graph.op_elements // rows), nodes=graph.nodes,
                         saved_largest_per_row=saved)


@dataclass(frozen=True)
class _GraphSizes:
    """Sizes in one pass's autograd graph (see :func:`_graph_sizes`)."""

    largest: int = 0          # bytes of its largest forward result
    op_elements: int = 0      # median elements of a result on the input's gradient path
    nodes: int = 0            # nodes on the input's gradient path (backward runs each)


def _meta_numel(node: Any) -> tuple[int, int]:
    """(elements, bytes) of the largest forward result a graph node receives a gradient for
    (the dtype is read only for a new largest: each read builds a Python object)."""
    numel = size = 0
    try:
        for meta in node._input_metadata:
            count = math.prod(meta.shape)
            if count > numel:
                numel, size = count, count * meta.dtype.itemsize
    except (RuntimeError, TypeError, AttributeError):  # pragma: no cover - exotic nodes
        pass
    return numel, size


def _graph_sizes(out: Any, skip: set[int]) -> _GraphSizes:
    """The largest result and the median result size of the operators backward runs to reach
    the differentiated input (every node's input metadata is the shape of a forward result,
    whose gradient backward materializes): the nodes from which a leaf that is not a parameter
    (storage not in ``skip``) is reachable. Branches that only lead to weights (a transposed
    weight) are not run by ``torch.autograd.grad(out, inputs)``, and their sizes do not grow
    with the rows: counted per row in a pass of 4 rows, they read as large.

    Two walks: one down over the whole graph (:func:`_consumers`), one back up from the input
    leaves over the nodes on the path, reading each node's sizes once."""
    parents, inputs = _consumers(out, skip)
    on_path: set[Any] = set()
    stack = [p for leaf in inputs for p in parents[leaf]]
    while stack:                                   # walk back up from the input leaves
        node = stack.pop()
        if node not in on_path:
            on_path.add(node)
            stack.extend(parents[node])
    sizes = [_meta_numel(n) for n in on_path]
    elements = sorted(e for e, _ in sizes if e > 0)
    return _GraphSizes(largest=max((b for _, b in sizes), default=0),
                       op_elements=elements[len(elements) // 2] if elements else 0,
                       nodes=len(elements))


def _leaf_node_type() -> type:
    view: Any = torch.zeros(1, requires_grad=True).view(1)
    return type(view.grad_fn.next_functions[0][0])


#: the type of a leaf's graph node (autograd's AccumulateGrad)
_ACCUMULATE: Any = _leaf_node_type()


def _consumers(out: Any, skip: set[int]) -> tuple[dict[Any, list[Any]], list[Any]]:
    """Every node of ``out``'s autograd graph -> the nodes it feeds (one walk, every node
    once), and the leaves whose storage is not in ``skip``. The nodes themselves are the keys,
    so each stays alive until the walk ends (an ``id`` could be reused by a node met later)."""
    stack: list[Any] = [o.grad_fn for o in (out if isinstance(out, tuple) else (out,))
                        if isinstance(o, torch.Tensor) and o.grad_fn is not None]
    parents: dict[Any, list[Any]] = {n: [] for n in stack}
    inputs: list[Any] = []
    while stack:
        node = stack.pop()
        if type(node) is _ACCUMULATE:   # a leaf (other nodes have no .variable: a lookup
            var = node.variable          # that fails costs an exception per node)
            if var.untyped_storage().data_ptr() not in skip:
                inputs.append(node)
            continue
        for nxt, _ in node.next_functions:
            if nxt is None:
                continue
            seen = parents.get(nxt)
            if seen is None:
                parents[nxt] = [node]
                stack.append(nxt)
            else:
                seen.append(node)
    return parents, inputs


def _unpack(t: torch.Tensor) -> torch.Tensor:
    return t


@contextlib.contextmanager
def measure(model: nn.Module) -> Iterator[Callable[[], Footprint]]:
    """Measure what each pass of ``model`` stores while the block runs real work.

    Yields a function returning the :class:`Footprint` (the pass with the most bytes per row).
    With gradients on, the bytes autograd saves for backward are counted (parameters and
    buffers excluded); without, the outputs of every module. The largest tensor per row is the
    largest module output or result in the pass's autograd graph.
    """
    skip = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    meter = _Meter(skip, {t.numel() for t in model.parameters()})
    handles = [model.register_forward_pre_hook(meter.start)]
    handles += [m.register_forward_hook(meter.output) for m in model.modules()]
    handles.append(model.register_forward_hook(meter.finished))

    try:
        with torch.autograd.graph.saved_tensors_hooks(meter.pack, _unpack):
            yield meter.footprint
    finally:
        for h in handles:
            h.remove()

