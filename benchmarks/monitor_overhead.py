"""Overhead of ``explain.TrainingMonitor`` at its defaults: bare loop vs monitored loop.

The same training loop (same initial weights, same batches, Adam) runs bare (A), with
``TrainingMonitor(model)`` (B), and with the monitor but without its every-step tracking
between records (U, an internal switch), interleaved A B U, B U A, U A B, ... so that machine
noise and the position within a round hit all alike.
Each run trains ``--epochs`` passes over the training split and calls ``log_epoch`` after each,
as the zoo trainer does. Printed: per model the median seconds of A and B with their spread
(min-max and IQR), the median of the per-pair ratios B/A (wall clock, and process CPU time,
which other processes on a shared machine disturb less), the records the monitor kept, and
the time spent inside the monitor's own calls (start, step, log_epoch, close; not its hooks
inside forward/backward) and the monitor's own measure of its sampled steps' work (including
those hooks; ``meta["monitor_seconds"]``). These two barely move with machine noise; together
(minus their overlap, the records inside step()) they bound the direct overhead, while the wall
ratio also shows indirect costs (caches, allocator) and the machine's noise.

Usage::

    python benchmarks/monitor_overhead.py                 # cnn on mnist-5k, rnn on japanese-vowels
    python benchmarks/monitor_overhead.py --repeats 9 --models rnn --quiet

The goal is a median ratio <= 1.03. On a shared machine (several processes on 2 cores) timings
are noisy: look at the spread before trusting a ratio.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explain.monitor import TrainingMonitor  # noqa: E402

DATASETS = {"cnn": "mnist-5k", "rnn": "japanese-vowels"}
MODES = ["bare", "monitor", "untracked"]
DEFAULTS = {"cnn": {"batch_size": 64, "epochs": 2},   # as the cnn-mnist preset: 63 steps/epoch
            "rnn": {"batch_size": 32, "epochs": 15}}  # as rnn-vowels: 8 steps/epoch


def setup(name: str, batch_size: int, limit: int | None):
    """The zoo model and its batches; random data of the right shape if the zoo lacks them."""
    torch.manual_seed(0)
    try:
        import zoo
        bundle = zoo.load_dataset(DATASETS[name])
        x, y = bundle.train.tensors
        model = zoo.create_model(name, **bundle.model_kwargs())
        source = DATASETS[name]
    except Exception as exc:  # noqa: BLE001 - the zoo is optional for this benchmark
        shape, classes = ((1, 28, 28), 10) if name == "cnn" else ((26, 12), 9)
        x, y = torch.randn(1024, *shape), torch.randint(0, classes, (1024,))
        from torch import nn
        model = (nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                               nn.Linear(16 * 13 * 13, classes)) if name == "cnn" else None)
        if model is None:
            class GRU(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.rnn, self.head = nn.GRU(12, 64, batch_first=True), nn.Linear(64, 9)

                def forward(self, xb):
                    return self.head(self.rnn(xb)[1][-1])
            model = GRU()
        source = f"random (zoo unavailable: {type(exc).__name__})"
    if limit:
        x, y = x[:limit], y[:limit]
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(x), generator=g)
    batches = [(x[order[i:i + batch_size]], y[order[i:i + batch_size]])
               for i in range(0, len(x), batch_size)]
    return model, batches, source


def run_once(model0, batches, epochs: int, mode: str
             ) -> tuple[float, float, int, float, float]:
    """Wall and process-CPU seconds for ``epochs`` passes (``mode``: "bare", "monitor", or
    "untracked": the monitor without its every-step tracking between records), the number of
    records kept, the wall seconds spent inside the monitor's own calls (start, step,
    log_epoch, close), and the monitor's own measure of its sampled steps' work
    (``meta["monitor_seconds"]``: arming, hooks in forward/backward, records, BPTT passes)."""
    model = copy.deepcopy(model0).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    mon = None if mode == "bare" else TrainingMonitor(model)
    if mon is not None:
        mon._track_between = mode == "monitor"
    own, clock = 0.0, time.perf_counter
    start, cpu = time.perf_counter(), time.process_time()
    if mon is not None:
        t = clock()
        mon.start()
        own += clock() - t
    try:
        for epoch in range(epochs):
            for xb, yb in batches:
                opt.zero_grad()
                loss = F.cross_entropy(model(xb), yb)
                loss.backward()
                opt.step()
                if mon is not None:
                    t = clock()
                    mon.step(loss=loss.detach(), target=yb)
                    own += clock() - t
            value = loss.item()
            if mon is not None:
                t = clock()
                mon.log_epoch(epoch=epoch + 1, train_loss=value)
                own += clock() - t
    finally:
        if mon is not None:
            t = clock()
            mon.close()
            own += clock() - t
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    if mon is None:
        return seconds, cpu, 0, 0.0, 0.0
    return seconds, cpu, len(mon.history.steps), own, mon.history.meta["monitor_seconds"]


def tracker_cost(model0, batches, epochs: int) -> dict[str, float]:
    """Thread-CPU microseconds per step of the every-step tracking, from one monitored run whose
    tracker methods are timed with ``time.thread_time_ns`` (the end-of-backward hook and
    callback, ``StepTracker.step``, ``LossCounter.add``); CPU time of this thread only, so other
    processes barely move it. The timing adds ~1 us per call."""
    from explain.monitor import _between
    spent: dict[str, int] = {}
    originals = {(cls, name): getattr(cls, name) for cls, name in (
        (_between.StepTracker, "_hook"), (_between.StepTracker, "_finish"),
        (_between.StepTracker, "step"), (_between.LossCounter, "add"))}

    def timed(key, fn):
        def wrapper(*args, **kwargs):
            t = time.thread_time_ns()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[key] = spent.get(key, 0) + time.thread_time_ns() - t
        return wrapper
    try:
        for (cls, name), fn in originals.items():
            setattr(cls, name, timed(f"{cls.__name__}.{name}", fn))
        run_once(model0, batches, epochs, "monitor")
    finally:
        for (cls, name), fn in originals.items():
            setattr(cls, name, fn)
    steps = epochs * len(batches)
    # StepTracker.step calls _finish itself only when no backward was seen: no double count
    per = {k: v / steps / 1e3 for k, v in spent.items()}
    per["total"] = sum(per.values())
    return per


def spread(values: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values, n=4) if len(values) >= 2 else [values[0]] * 3
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "iqr": q[2] - q[0], "ci90": median_ci(values)}


def median_ci(values: list[float], level: float = 0.9, resamples: int = 2000) -> list[float]:
    """Bootstrap interval of the median (seeded): how far the median itself may be off."""
    import random
    rng = random.Random(0)
    meds = sorted(statistics.median(rng.choices(values, k=len(values)))
                  for _ in range(resamples))
    lo = meds[int((1 - level) / 2 * resamples)]
    hi = meds[min(resamples - 1, int((1 + level) / 2 * resamples))]
    return [lo, hi]


def bench(name: str, args: argparse.Namespace) -> dict:
    batch_size = args.batch_size or DEFAULTS[name]["batch_size"]
    epochs = args.epochs or DEFAULTS[name]["epochs"]
    model, batches, source = setup(name, batch_size, args.limit)
    for mode in MODES:  # warm-up: allocator, kernels, lazy imports
        run_once(model, batches, 1, mode)
    wall: dict[str, list[float]] = {m: [] for m in MODES}
    cpu: dict[str, list[float]] = {m: [] for m in MODES}
    own, sampled, records = [], [], 0
    for i in range(args.repeats):  # the order rotates: no mode always first or last
        for mode in MODES[i % 3:] + MODES[:i % 3]:
            w, c, n, o, smp = run_once(model, batches, epochs, mode)
            wall[mode].append(w)
            cpu[mode].append(c)
            if mode == "monitor":
                records = n
                own.append(o)
                sampled.append(smp)
    bare, mon = wall["bare"], wall["monitor"]
    ratios = [b / a for a, b in zip(bare, mon)]
    cpu_ratios = [b / a for a, b in zip(cpu["bare"], cpu["monitor"])]
    untracked = {"ratio": spread([b / a for a, b in zip(bare, wall["untracked"])]),
                 "cpu_ratio": spread([b / a for a, b in zip(cpu["bare"], cpu["untracked"])]),
                 "tracked_vs_untracked_cpu": spread(
                     [b / a for a, b in zip(cpu["untracked"], cpu["monitor"])])}
    steps = epochs * len(batches)
    return {"model": name, "data": source, "steps": steps, "records": records,
            "bare_s": spread(bare), "monitor_s": spread(mon), "ratio": spread(ratios),
            "ratio_of_medians": statistics.median(mon) / statistics.median(bare),
            "cpu_ratio": spread(cpu_ratios), "own_s": spread(own),
            "own_fraction": statistics.median(own) / statistics.median(bare),
            "sampled_s": spread(sampled),
            "sampled_fraction": statistics.median(sampled) / statistics.median(bare),
            "untracked": untracked, "bare_step_us": statistics.median(cpu["bare"]) / steps * 1e6,
            "tracker_us": tracker_cost(model, batches, epochs),
            "threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15,
                        help="rounds (bare, monitor, untracked) per model (default 15)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs per run (default: cnn 2, rnn 15)")
    parser.add_argument("--models", default="cnn,rnn", help="comma-separated: cnn, rnn")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="default: cnn 64, rnn 32 (as the presets)")
    parser.add_argument("--limit", type=int, default=None, help="use only N training samples")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--quiet", action="store_true", help="print one JSON line per model")
    args = parser.parse_args(argv)
    if args.repeats < 1 or (args.epochs is not None and args.epochs < 1):
        parser.error("--repeats and --epochs must be >= 1")
    torch.set_num_threads(args.threads)
    for name in args.models.split(","):
        if name not in DATASETS:
            parser.error(f"unknown model {name!r}; choose from {', '.join(DATASETS)}")
        result = bench(name, args)
        if args.quiet:
            print(json.dumps(result))
            continue
        b, m, r = result["bare_s"], result["monitor_s"], result["ratio"]
        print(f"{name} on {result['data']}: {result['steps']} steps/run, {args.repeats} "
              f"rounds, {result['records']} records/run")
        print(f"  bare     median {b['median']:.3f}s  min-max {b['min']:.3f}-{b['max']:.3f}s"
              f"  IQR {b['iqr']:.3f}s")
        print(f"  monitor  median {m['median']:.3f}s  min-max {m['min']:.3f}-{m['max']:.3f}s"
              f"  IQR {m['iqr']:.3f}s")
        print(f"  ratio    median {r['median']:.3f}x  90% CI of the median "
              f"{r['ci90'][0]:.3f}-{r['ci90'][1]:.3f}x  min-max {r['min']:.3f}-{r['max']:.3f}x"
              f"  (ratio of medians {result['ratio_of_medians']:.3f}x; goal <= 1.03x)")
        o = result["own_s"]
        print(f"  own time median {o['median'] * 1e3:.1f} ms  min-max {o['min'] * 1e3:.1f}-"
              f"{o['max'] * 1e3:.1f} ms = {result['own_fraction']:.2%} of the bare median  (inside"
              f" the monitor's calls; excludes its hooks in forward/backward; little noise)")
        o = result["sampled_s"]
        print(f"  sampled-step work median {o['median'] * 1e3:.1f} ms = "
              f"{result['sampled_fraction']:.2%} of the bare median  (the monitor's measure: "
              "arming, hooks in forward/backward, records, BPTT passes)")
        c = result["cpu_ratio"]
        print(f"  CPU-time ratio median {c['median']:.3f}x  min-max {c['min']:.3f}-{c['max']:.3f}x"
              f"  (process time: less sensitive to other processes on a shared machine)")
        u = result["untracked"]
        print(f"  without the every-step tracking: ratio median {u['ratio']['median']:.3f}x, "
              f"CPU-time ratio median {u['cpu_ratio']['median']:.3f}x (min-max "
              f"{u['cpu_ratio']['min']:.3f}-{u['cpu_ratio']['max']:.3f}x); tracked / untracked "
              f"CPU time {u['tracked_vs_untracked_cpu']['median']:.3f}x")
        t = result["tracker_us"]
        parts = ", ".join(f"{k} {v:.1f}" for k, v in t.items() if k != "total")
        print(f"  every-step tracking {t['total']:.1f} us/step of a {result['bare_step_us']:.0f} us"
              f" bare step = {t['total'] / result['bare_step_us']:.2%}  ({parts}; thread CPU time)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
