"""Accuracy and wall time of the default zoo presets, against the issue's targets.

Usage: python benchmarks/zoo_training.py [--presets cnn-mnist rnn-vowels transformer-rt]
       [--repeats 1] [--threads 2] [--quiet]

Prints, per preset: test accuracy (median over repeats and seeds), training seconds (median and
min-max), the target for each, and the ratio time/target. Repeats are interleaved across presets
(A B C A B C ...) so a burst of machine noise does not land on one preset only.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

import zoo

TARGETS = {  # preset: (min test accuracy, max seconds on 2 CPU cores)
    "cnn-mnist": (0.97, 30.0),
    "rnn-vowels": (0.95, 10.0),
    "transformer-rt": (0.72, 120.0),
    "mlp-digits": (0.90, 5.0),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["cnn-mnist", "rnn-vowels", "transformer-rt"])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--monitor", action="store_true", help="train with the monitor on (default on in zoo.train; off here measures the bare trainer)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.presets:  # warm the dataset caches outside the timed region
        p = zoo.get_preset(name)
        zoo.load_dataset(p.dataset, **p.dataset_options)
    acc: dict[str, list[float]] = {n: [] for n in args.presets}
    secs: dict[str, list[float]] = {n: [] for n in args.presets}
    for r in range(args.repeats):
        for name in args.presets:
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                run = zoo.train(preset=name, out=tmp, progress=not args.quiet, seed=r,
                                device=args.device, monitor=True)
                wall = time.perf_counter() - t0
            acc[name].append(run.metrics["test_accuracy"])
            secs[name].append(wall)
    print(f"{'preset':16s} {'test acc (med)':>14s} {'target':>7s} {'seconds med [min-max]':>24s} "
          f"{'target':>7s} {'time/target':>11s}")
    for name in args.presets:
        a, s = statistics.median(acc[name]), statistics.median(secs[name])
        ta, ts = TARGETS.get(name, (float("nan"), float("nan")))
        print(f"{name:16s} {a:14.4f} {ta:7.2f} {s:10.1f} [{min(secs[name]):.1f}-{max(secs[name]):.1f}]"
              f"{'':>5s} {ts:7.0f} {s / ts:10.2f}x  {'OK' if a >= ta and s <= ts else 'MISS'}")


if __name__ == "__main__":
    main()
