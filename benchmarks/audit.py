"""Time a zoo-run audit end to end, stage by stage (goal: <= 60 s on 2 CPU cores).

Usage::

    python benchmarks/audit.py                     # every default preset, trained if missing
    python benchmarks/audit.py --presets cnn-mnist --runs runs --repeats 3
    python benchmarks/audit.py --run runs/rnn-vowels

Stages: loading the run folder, the audit's own stages (predict, checks, performance,
explanations, card), and rendering each report format. The machine is shared: repeat and read
the medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

GOAL_SECONDS = 60.0


def _ensure_run(preset: str, runs: Path, epochs: int | None, quiet: bool) -> Path:
    import zoo

    folder = runs / preset
    try:
        zoo.load_run(folder)
    except Exception:  # missing or stale: train it
        if not quiet:
            print(f"training {preset} -> {folder} ...", file=sys.stderr)
        cfg = {"epochs": epochs} if epochs else {}
        zoo.train(preset=preset, out=folder, progress=False,
                  overwrite=(folder / "run.json").exists(), **cfg)  # replace a stale run
    return folder


QUESTIONS = ("calibration", "shallow-baseline", "robustness", "distribution-shift")


def time_audit(folder: Path, samples: int, quiet: bool = True) -> dict[str, float]:
    """Seconds per stage of one audit of ``folder`` (plus ``total``); unless ``quiet``, each
    question check's verdict is printed."""
    import zoo

    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    run = zoo.load_run(folder)
    _ = run.dataset  # loaded lazily: count it with the run
    stages["load_run"] = time.perf_counter() - t0
    report = run.audit(samples=samples)  # a zoo Run audits itself through explain.audit
    stages.update(report.timings)
    for f in report.findings:
        if f.check in QUESTIONS and not quiet:
            print(f"  [{f.severity.value}] {f.check}: {f.summary}")
    with tempfile.TemporaryDirectory() as tmp:
        for ext in ("json", "md", "html"):
            t = time.perf_counter()
            report.save(Path(tmp) / f"report.{ext}")
            stages[f"render_{ext}"] = time.perf_counter() - t
    stages["total"] = time.perf_counter() - t0
    return stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["cnn-mnist", "rnn-vowels",
                                                         "transformer-rt", "mlp-digits"])
    parser.add_argument("--run", type=Path, help="audit this run folder instead of presets")
    parser.add_argument("--runs", type=Path, default=Path("runs"),
                        help="folder of run folders (trained here when missing)")
    parser.add_argument("--epochs", type=int, help="epochs when a preset must be trained")
    parser.add_argument("--samples", type=int, default=8, help="inputs to explain (default 8)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--quiet", action="store_true", help="print only the summary lines")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    folders = ([args.run] if args.run else
               [_ensure_run(p, args.runs, args.epochs, args.quiet) for p in args.presets])
    ok = True
    for folder in folders:
        runs = [time_audit(folder, args.samples, args.quiet or i > 0)
                for i in range(args.repeats)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        spread = max(r["total"] for r in runs) - min(r["total"] for r in runs)
        ok &= med["total"] <= GOAL_SECONDS
        if not args.quiet:
            print(f"\n{folder} ({args.repeats} run(s), medians)")
            for k, v in med.items():
                print(f"  {k:<14} {v:8.2f} s")
        print(f"{folder.name}: total {med['total']:.1f} s (spread {spread:.1f} s) "
              f"{'<=' if med['total'] <= GOAL_SECONDS else '>'} {GOAL_SECONDS:.0f} s")
    print(f"GOAL audit <= {GOAL_SECONDS:.0f} s per zoo run: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
