"""Time a zoo-run audit end to end, stage by stage (goal: <= 60 s on 2 CPU cores).

Usage::

    python benchmarks/audit.py                     # every default preset, trained if missing
    python benchmarks/audit.py --presets cnn-mnist --runs runs --repeats 3
    python benchmarks/audit.py --run runs/rnn-vowels
    python benchmarks/audit.py --opt-in            # also time the learning curve, data sanity

Stages: loading the run folder, the audit's own stages (predict, checks, performance, the four
question checks, explanations, card), and rendering each report format; ``cpu_total`` is the
process CPU time of the whole audit (the machine is shared: wall time depends on the load, so
repeat and read the medians). With ``--opt-in`` the opt-in parts are timed separately and are
not in the 60 s goal: ``zoo.learning_curve`` (retraining on 1/8, 1/4, 1/2 of the data) and the
data-randomization sanity test (retraining on permuted labels, then grading every method).
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
    t0, c0 = time.perf_counter(), time.process_time()
    run = zoo.load_run(folder)
    _ = run.dataset  # loaded lazily: count it with the run
    stages["load_run"] = time.perf_counter() - t0
    ca = time.process_time()
    report = run.audit(samples=samples)  # a zoo Run audits itself through explain.audit
    stages["cpu_audit"] = time.process_time() - ca
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
    stages["cpu_total"] = time.process_time() - c0
    return stages


def time_opt_in(folder: Path, samples: int, plain_cpu: float) -> dict[str, float]:
    """Wall and CPU seconds of the opt-in parts of an audit of ``folder``, with what they found
    (printed): the learning curve and the data-randomization sanity test. The sanity test's CPU
    is that of ``run.audit`` with it minus ``plain_cpu`` (``run.audit`` without it)."""
    import zoo
    from explain.auditing.sections import ExplanationsSection

    run = zoo.load_run(folder)
    _ = run.dataset
    out: dict[str, float] = {}
    t, c = time.perf_counter(), time.process_time()
    curve = zoo.learning_curve(run, progress=False)
    out["learning_curve"], out["learning_curve_cpu"] = (time.perf_counter() - t,
                                                        time.process_time() - c)
    print(f"  learning curve: {curve.summary}")
    c = time.process_time()
    report = run.audit(samples=samples, data_sanity=True)
    out["data_sanity_cpu"] = time.process_time() - c - plain_cpu
    sec = report.section(ExplanationsSection)
    out["data_sanity_training"] = report.timings["data_sanity_training"]
    out["data_sanity_metric"] = sum(m.quality.timings.get("data_sanity", 0.0)
                                    for m in sec.methods if m.quality is not None)
    for r in sec.sanity_rows():
        print(f"  sanity {r.method}: randomized weights {r.model_correlation}, permuted labels "
              f"{r.data_correlation} ({'pass' if r.data_passed else 'fail'})")
    return out


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
    parser.add_argument("--opt-in", dest="opt_in", action="store_true",
                        help="also time the learning curve and the data-sanity test")
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
        print(f"{folder.name}: total {med['total']:.1f} s wall, {med['cpu_total']:.1f} s CPU "
              f"(spread {spread:.1f} s) {'<=' if med['total'] <= GOAL_SECONDS else '>'} "
              f"{GOAL_SECONDS:.0f} s")
        if args.opt_in:
            extra = time_opt_in(folder, args.samples, med["cpu_audit"])
            print(f"{folder.name} opt-in: " + ", ".join(f"{k} {v:.1f} s"
                                                        for k, v in extra.items()))
    print(f"GOAL audit <= {GOAL_SECONDS:.0f} s per zoo run: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
