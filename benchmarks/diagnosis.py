"""Diagnosis accuracy: train every zoo preset, run ``explain.diagnose`` and compare with the
diagnosis each preset plants (``preset.expected``).

Usage: python benchmarks/diagnosis.py [--suite zoo|wild|both] [--fast] [--quiet]
       [--presets NAME ...] [--json PATH]

The zoo suite also trains :data:`VARIANTS`: zoo presets with overrides that plant a pathology
where a data set's presets are all healthy (the speech data, ``spoken-digits``: an overfitting
and a diverging ``cnn-speech``). The wild suite (``benchmarks/_wild.py``) trains runs written as users write them (their own
loops under ``explain.TrainingMonitor``, no ``zoo.train``) and prints each run's loss curves so
its ground truth can be checked by eye.

Prints, per preset, the severity of every check (F=FAIL, W=WARN, i=INFO, .=PASS, -=SKIPPED, E=ERROR) with
the numbers behind the key checks; then the confusion matrix expected diagnosis (rows) vs checks
found at WARN/FAIL (columns); then one PASS/FAIL line for the goal: every planted pathology found
by the right check at WARN or FAIL, and no WARN/FAIL from the core checks on healthy presets.
``--fast`` trains each preset for half its epochs (at least 3). Exit status 0 when the goal holds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import zoo
from explain.checks import diagnose, list_checks
from explain.errors import TrainingDivergedError
from explain.findings import Severity

CORE = ("overfitting", "vanishing-gradients", "exploding-gradients", "non-finite", "dead-units",
        "saturation", "unstable-training")
LETTER = {Severity.SKIPPED: "-", Severity.PASS: ".", Severity.INFO: "i", Severity.WARN: "W",
          Severity.FAIL: "F", Severity.ERROR: "E"}
ABBREV = {"overfitting": "ovfit", "vanishing-gradients": "vanish", "exploding-gradients": "explod",
          "non-finite": "nonfin", "dead-units": "dead", "saturation": "satur",
          "temporal-gradient-decay": "tempor", "spectral": "spectr", "data-sufficiency": "data",
          "unstable-training": "unstab", "calibration": "calib", "distribution-shift": "shift",
          "shallow-baseline": "shallw", "robustness": "robust"}


@dataclass(frozen=True)
class Variant:
    """A zoo preset trained with overrides that plant a pathology (``expected``), for data
    sets whose presets are all healthy; ``overrides`` go to ``zoo.train`` (``model_kwargs``
    and ``dataset_options`` are merged into the preset's)."""

    name: str
    preset: str
    expected: tuple[str, ...]
    note: str
    overrides: dict[str, Any] = field(default_factory=dict)


#: the speech data (spoken-digits) in the ground truth: its presets are healthy; these plant
#: one pathology each, cheaply (seconds of CPU each)
VARIANTS = (
    Variant("cnn-speech-overfit", "cnn-speech", ("overfitting",),
            "100 training clips (10 per word), no dropout, batch norm or weight decay, 40 epochs:"
            " training accuracy 1.0, validation loss rising from epoch 1",
            {"dataset_options": {"train_size": 100},
             "model_kwargs": {"dropout": 0.0, "batch_norm": False},
             "epochs": 40, "batch_size": 20, "scheduler": "none", "weight_decay": 0.0}),
    Variant("cnn-speech-diverge", "cnn-speech", ("unstable-training",),
            "plain SGD at lr 3, no schedule: the loss jumps ~1000x in epoch 1, then sits at "
            "chance (ln 10)",
            {"optimizer": "sgd", "lr": 3.0, "scheduler": "none", "weight_decay": 0.0,
             "epochs": 3}),
)


def train_and_diagnose(name: str, fast: bool, quiet: bool) -> dict[str, Any]:
    """Train preset (or :data:`VARIANTS` entry) ``name`` into a temporary folder and diagnose
    it."""
    variant = next((v for v in VARIANTS if v.name == name), None)
    preset = zoo.get_preset(variant.preset if variant else name)
    overrides: dict[str, Any] = dict(variant.overrides) if variant else {}
    for key in ("model_kwargs", "dataset_options"):
        if key in overrides:
            overrides[key] = {**getattr(preset, key), **overrides[key]}
    if fast:
        epochs = int(overrides.get("epochs", preset.config.get("epochs", 10)))
        overrides["epochs"] = max(3, epochs // 2)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        diverged = False
        try:
            run = zoo.train(preset=preset.name, out=tmp, progress=not quiet, **overrides)
        except TrainingDivergedError:  # the planted explosion may stop the run; the run is kept
            diverged = True
            run = zoo.load_run(tmp)
        seconds = time.perf_counter() - t0
        findings = diagnose(run.history, run.model)
    expected = variant.expected if variant else preset.expected
    return {"preset": name, "expected": list(expected), "seconds": seconds,
            "diverged": diverged, "test_accuracy": (run.metrics or {}).get("test_accuracy"),
            "findings": {f.check: f for f in findings}}


def wild_results(fast: bool, quiet: bool, names: list[str] | None) -> list[dict[str, Any]]:
    """Train every wild case (``--fast``: half the epochs), print its curves, diagnose it."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _wild
    out = []
    for case in _wild.CASES:
        if names and case.name not in names:
            continue
        r = _wild.run_case(case, 0.5 if fast else 1.0)
        findings = diagnose(r.history, r.model)
        e = r.history.epochs
        if not quiet:
            print(f"{case.name} ({case.note or 'healthy'}): {len(e['epoch'])} epochs, "
                  f"{r.seconds:.1f}s\n  train loss {curve(e['train_loss'])}\n"
                  f"  val loss   {curve(e['val_loss'])}\n  train/val acc "
                  f"{e['train_acc'][-1]:.3f}/{e['val_acc'][-1]:.3f}")
        out.append({"preset": case.name, "expected": list(case.expected),
                    "seconds": r.seconds, "diverged": False, "test_accuracy": e["val_acc"][-1],
                    "findings": {f.check: f for f in findings}})
    return out


def curve(values: list[Any], points: int = 10) -> str:
    """About ``points`` values of a curve, evenly spaced, always with the last one."""
    n = len(values)
    idx = sorted({round(i * (n - 1) / (points - 1)) for i in range(points)}) if n else []
    return " ".join("nan" if values[i] is None else f"{values[i]:.3g}" for i in idx)


def numbers(findings: dict[str, Any]) -> str:
    """The measured values behind the key checks, compactly."""
    ev = {k: f.evidence for k, f in findings.items()}
    parts = []
    if ev["overfitting"].get("gap") is not None:
        o = ev["overfitting"]
        parts.append(f"gap={o['gap']:.3f} GLmax={o.get('max_gl') or 0:.3g}"
                     f"@{o.get('rise_epoch')} stop{o['best_epoch']}")
    if ev["vanishing-gradients"].get("ratio") is not None:
        parts.append(f"g1/gL={ev['vanishing-gradients']['ratio']:.2g}")
    if ev["exploding-gradients"].get("max_norm") is not None:
        e = ev["exploding-gradients"]
        parts.append(f"spike={e.get('max_spike') or 0:.3g}x max|g|={e['max_norm']:.3g}")
    if ev["dead-units"].get("frac_dead"):
        parts.append(f"dead={max(ev['dead-units']['frac_dead']):.2f}")
    if ev["saturation"].get("frac_saturated"):
        parts.append(f"sat={max(ev['saturation']['frac_saturated']):.2f}")
    if ev["temporal-gradient-decay"].get("ratio") is not None:
        parts.append(f"g_t0/g_T={ev['temporal-gradient-decay']['ratio']:.2g}")
    if ev["spectral"].get("mean_alpha") is not None:
        parts.append(f"alpha={ev['spectral']['mean_alpha']:.2f}")
    return " ".join(parts)


def flagged(result: dict[str, Any]) -> set[str]:
    return {c for c, f in result["findings"].items()
            if Severity.WARN <= f.severity <= Severity.FAIL}


def report(results: list[dict[str, Any]]) -> bool:
    """Print the tables and the goal line; return whether the goal holds."""
    ids = [c for c in list_checks() if any(c in r["findings"] for r in results)]
    print(f"\n{'run':26s} {'expected':22s} " + " ".join(f"{ABBREV.get(c, c[:6]):>6s}" for c in ids)
          + "  acc    sec  numbers")
    for r in results:
        cells = " ".join(f"{LETTER[r['findings'][c].severity]:>6s}" for c in ids)
        acc = r["test_accuracy"]
        print(f"{r['preset']:26s} {','.join(r['expected']) or 'healthy':22s} {cells}  "
              f"{acc if acc is None else f'{acc:.3f}'} {r['seconds']:6.0f}"
              f"{' diverged' if r['diverged'] else ''}  {numbers(r['findings'])}")
    rows = sorted({e for r in results for e in r["expected"]} | {"healthy"},
                  key=lambda x: (x == "healthy", ids.index(x) if x in ids else 0))
    print("\nConfusion matrix: expected diagnosis (rows) x checks at WARN/FAIL (columns), "
          "counts of presets")
    print(f"{'':22s} " + " ".join(f"{ABBREV.get(c, c[:6]):>6s}" for c in ids) + "  presets")
    for row in rows:
        members = [r for r in results if (row in r["expected"]) or
                   (row == "healthy" and not r["expected"])]
        counts = [sum(c in flagged(r) for r in members) for c in ids]
        print(f"{row:22s} " + " ".join(f"{n:6d}" for n in counts) + f"  {len(members)}")
    misses = [f"{r['preset']}: {e} not found ({r['findings'][e].summary})"
              for r in results for e in r["expected"] if e not in flagged(r)]
    false = [f"{r['preset']}: {c} {r['findings'][c].severity.value} "
             f"({r['findings'][c].summary})"
             for r in results if not r["expected"] for c in CORE if c in flagged(r)]
    for line in misses + false:
        print("  -", line)
    ok = not misses and not false
    print(f"\n{'PASS' if ok else 'FAIL'}: {sum(len(r['expected']) for r in results) - len(misses)}"
          f"/{sum(len(r['expected']) for r in results)} planted pathologies found at WARN/FAIL; "
          f"{len(false)} WARN/FAIL from the core checks on "
          f"{sum(not r['expected'] for r in results)} healthy presets.")
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", choices=("zoo", "wild", "both"), default="zoo",
                    help="the zoo presets, the wild suite of hand-written loops, or both")
    ap.add_argument("--presets", nargs="+", default=None,
                    help="default: every zoo preset (and every wild case)")
    ap.add_argument("--fast", action="store_true", help="half the epochs (at least 3)")
    ap.add_argument("--quiet", action="store_true", help="no progress bars or per-run lines")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None, help="also write the findings to this JSON file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = []
    if args.suite in ("zoo", "both"):
        every = zoo.list_presets() + [v.name for v in VARIANTS]
        for name in [p for p in args.presets or every if p in every]:
            results.append(train_and_diagnose(name, args.fast, args.quiet))
            if not args.quiet:
                print(f"{name}: {time.strftime('%H:%M:%S')} done in "
                      f"{results[-1]['seconds']:.0f}s", file=sys.stderr)
    if args.suite in ("wild", "both"):
        results += wild_results(args.fast, args.quiet, args.presets)
    ok = report(results)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump([{**r, "findings": [f.to_dict() for f in r["findings"].values()]}
                       for r in results], fh, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
