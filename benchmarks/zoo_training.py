"""Accuracy, wall time and CPU seconds of zoo presets, against the issues' targets.

Usage: python benchmarks/zoo_training.py [--presets cnn-mnist rnn-vowels transformer-rt]
       [--repeats 1] [--threads 2] [--process] [--no-monitor] [--quiet]

Prints, per preset: test accuracy (median over repeats and seeds), wall seconds and CPU seconds
(median and min-max), the targets, and the ratio to the time target. Repeats are interleaved
across presets (A B C A B C ...) so a burst of machine noise does not land on one preset only.

``--process`` trains each run in a fresh ``python -m deepscope train PRESET --out DIR`` process
and counts that whole process (imports, data loading from the cache, training, test, save):
CPU seconds from ``getrusage(RUSAGE_CHILDREN)``, threads from ``OMP_NUM_THREADS``. Without it,
runs are trained in this process after the data sets are loaded once (the bare trainer).
Run timings under the shared lock: ``flock /work/wt/_notes/bench.lock python ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {  # preset: (min test accuracy, max seconds on 2 CPU cores)
    "cnn-mnist": (0.97, 30.0),
    "rnn-vowels": (0.95, 10.0),
    "transformer-rt": (0.72, 120.0),
    "mlp-digits": (0.90, 5.0),
    "cnn-speech": (0.95, 60.0),  # issue 16: CPU seconds, synthesis excluded (cached)
    "rnn-speech": (0.95, 60.0),
}


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _in_process(name: str, seed: int, args: argparse.Namespace) -> tuple[float, float, float]:
    import zoo
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        run = zoo.train(preset=name, out=tmp, progress=not args.quiet, seed=seed,
                        device=args.device, monitor=not args.no_monitor)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return run.metrics["test_accuracy"], wall, cpu


def _in_child(name: str, seed: int, args: argparse.Namespace) -> tuple[float, float, float]:
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "deepscope", "train", name, "--out", str(out),
               "--seed", str(seed), "--device", args.device]
        t0, c0 = time.perf_counter(), _children_cpu()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL if args.quiet else None)
        wall, cpu = time.perf_counter() - t0, _children_cpu() - c0
        metrics = json.loads((out / "run.json").read_text())["metrics"]
    return metrics["test_accuracy"], wall, cpu


def _row(name: str, acc: list[float], wall: list[float], cpu: list[float]) -> str:
    a, w, c = statistics.median(acc), statistics.median(wall), statistics.median(cpu)
    ta, ts = TARGETS.get(name, (float("nan"), float("nan")))
    ok = "OK" if a >= ta and c <= ts else "MISS"
    return (f"{name:16s} {a:8.4f} {ta:6.2f} {w:7.1f} [{min(wall):.1f}-{max(wall):.1f}] "
            f"{c:7.1f} [{min(cpu):.1f}-{max(cpu):.1f}] {ts:6.0f} {c / ts:7.2f}x  {ok}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["cnn-mnist", "rnn-vowels", "transformer-rt"])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--process", action="store_true",
                    help="train each run in a fresh `deepscope train` process (whole-process CPU)")
    ap.add_argument("--no-monitor", action="store_true",
                    help="train without the monitor (default: on, as zoo.train; in-process only)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    import torch

    import zoo
    torch.set_num_threads(args.threads)
    for name in args.presets:  # warm the dataset caches (synthesis) outside the timed region
        p = zoo.get_preset(name)
        zoo.load_dataset(p.dataset, **p.dataset_options)
    measure = _in_child if args.process else _in_process
    got: dict[str, list[tuple[float, float, float]]] = {n: [] for n in args.presets}
    for r in range(args.repeats):
        for name in args.presets:
            got[name].append(measure(name, r, args))
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}, "
          f"{args.threads} threads, {'fresh process' if args.process else 'in process'}")
    print(f"{'preset':16s} {'test acc':>8s} {'target':>6s} {'wall s med [min-max]':>20s} "
          f"{'CPU s med [min-max]':>20s} {'target':>6s} {'CPU/tgt':>7s}")
    for name in args.presets:
        acc, wall, cpu = (list(v) for v in zip(*got[name]))
        print(_row(name, acc, wall, cpu))


if __name__ == "__main__":
    main()
