"""Diagnosis accuracy: train every zoo preset, run ``explain.diagnose`` and compare with the
diagnosis each preset plants (``preset.expected``).

Usage: python benchmarks/diagnosis.py [--fast] [--quiet] [--presets NAME ...] [--json PATH]

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
          "unstable-training": "unstab"}


def train_and_diagnose(name: str, fast: bool, quiet: bool) -> dict[str, Any]:
    """Train preset ``name`` into a temporary folder and diagnose it."""
    preset = zoo.get_preset(name)
    overrides = {}
    if fast:
        overrides["epochs"] = max(3, int(preset.config.get("epochs", 10)) // 2)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        diverged = False
        try:
            run = zoo.train(preset=name, out=tmp, progress=not quiet, **overrides)
        except TrainingDivergedError:  # the planted explosion may stop the run; the run is kept
            diverged = True
            run = zoo.load_run(tmp)
        seconds = time.perf_counter() - t0
        findings = diagnose(run.history, run.model)
    return {"preset": name, "expected": list(preset.expected), "seconds": seconds,
            "diverged": diverged, "test_accuracy": (run.metrics or {}).get("test_accuracy"),
            "findings": {f.check: f for f in findings}}


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
    ids = list_checks()
    print(f"\n{'preset':15s} {'expected':22s} " + " ".join(f"{ABBREV[c]:>6s}" for c in ids)
          + "  acc    sec  numbers")
    for r in results:
        cells = " ".join(f"{LETTER[r['findings'][c].severity]:>6s}" for c in ids)
        acc = r["test_accuracy"]
        print(f"{r['preset']:15s} {','.join(r['expected']) or 'healthy':22s} {cells}  "
              f"{acc if acc is None else f'{acc:.3f}'} {r['seconds']:6.0f}"
              f"{' diverged' if r['diverged'] else ''}  {numbers(r['findings'])}")
    rows = sorted({e for r in results for e in r["expected"]} | {"healthy"},
                  key=lambda x: (x == "healthy", ids.index(x) if x in ids else 0))
    print("\nConfusion matrix: expected diagnosis (rows) x checks at WARN/FAIL (columns), "
          "counts of presets")
    print(f"{'':22s} " + " ".join(f"{ABBREV[c]:>6s}" for c in ids) + "  presets")
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
    ap.add_argument("--presets", nargs="+", default=None, help="default: every zoo preset")
    ap.add_argument("--fast", action="store_true", help="half the epochs (at least 3)")
    ap.add_argument("--quiet", action="store_true", help="no progress bars or per-run lines")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None, help="also write the findings to this JSON file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = []
    for name in args.presets or zoo.list_presets():
        results.append(train_and_diagnose(name, args.fast, args.quiet))
        if not args.quiet:
            print(f"{name}: {time.strftime('%H:%M:%S')} done in {results[-1]['seconds']:.0f}s",
                  file=sys.stderr)
    ok = report(results)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump([{**r, "findings": [f.to_dict() for f in r["findings"].values()]}
                       for r in results], fh, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
