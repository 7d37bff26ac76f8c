"""Data-parallel scaling of zoo training: measured throughput at 1 and N processes (gloo, CPU),
and a written estimate for N GPUs.

Measured: ``zoo.train`` of each preset for ``--epochs`` epochs (monitor off), once in this
process and once under ``torchrun --nproc_per_node N`` (DDP, gloo); samples per second of the
whole run and per process. On CPU the processes share the machine's cores, so the 2-process
number says how much DDP's bookkeeping and gloo's all-reduce cost, not what more machines give.

Estimated, for N GPUs with NCCL (ring all-reduce): each step moves
``parameter bytes x 2(N-1)/N`` per GPU (fp32 gradients); at a bus bandwidth ``B`` and a
latency ``L`` per all-reduce that takes ``L + volume / B`` per step, overlapped with backward by DDP's buckets at best, added at worst. The
per-GPU throughput estimate is ``batch / (t_compute + t_allreduce)`` with ``t_compute`` the
measured 1-process step time (a CPU number unless run on a GPU machine: read it as a shape).

Monitor overhead under DDP (``--monitor-overhead``): a user's own DDP loop (the zoo model of
``benchmarks/monitor_overhead.py``, Adam, each rank its own batches, the global batch
``batch x N``) runs bare (A) and with ``TrainingMonitor(ddp_model)`` (B), interleaved A B, B A,
... from the same weights on the same batches, under ``torchrun --nproc_per_node N``. Each run
starts and ends with a barrier; its wall time is the slowest rank's, its CPU time the sum over
the ranks' processes. Printed: the median and min-max of the per-pair ratios B/A (wall and CPU)
and the records kept. The goal is a median ratio <= 1.03. Measured (2 processes on 2 shared
cores, load 2.5, 7 pairs; 2 records per run at the DDP interval of 50): cnn wall 1.026
[0.867-1.181], CPU 0.988 [0.961-1.054]; rnn wall 0.982 [0.498-1.902], CPU 1.020 [0.913-1.232].

Usage::

    python benchmarks/scaling.py                       # mlp-digits and rnn-vowels, 1 and 2 procs
    python benchmarks/scaling.py --presets cnn-mnist --epochs 1 --nproc 2
    python benchmarks/scaling.py --monitor-overhead --models cnn rnn --repeats 7
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import zoo  # noqa: E402
from explain._core import distributed as dist  # noqa: E402
from zoo.presets import DEFAULT_PRESETS  # noqa: E402

#: (bus bandwidth GB/s, latency per all-reduce in us) of the estimate: NVLink (H100/H200
#: class, one node) and PCIe 4.0 x16. The latency dominates for the small zoo models.
BANDWIDTHS = {"nvlink": (300.0, 15.0), "pcie": (20.0, 30.0)}
GPUS = (2, 4, 8)


def _measure(preset: str, epochs: int) -> dict[str, float]:
    run = zoo.train(preset=preset, epochs=epochs, progress=False, monitor=False, device="cpu")
    seconds = float(run.metrics["train_seconds"])
    samples = float(run.metrics["n_train"]) * epochs
    return {"seconds": seconds, "samples_per_s": samples / seconds,
            "steps": float(epochs * zoo.distributed.steps_per_epoch(
                int(run.metrics["n_train"]), run.config.batch_size)),
            "batch": float(run.config.batch_size),
            "params": float(sum(p.numel() for p in run.model.parameters()))}


def _worker(presets: list[str], epochs: int, out: str) -> None:
    owned = dist.init_from_env("cpu")
    results = {p: _measure(p, epochs) for p in presets}
    if dist.is_main():
        Path(out).write_text(json.dumps(results))
    if owned:
        dist.destroy()


def _under_torchrun(presets: list[str], epochs: int, nproc: int) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder, "out.json")
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", __file__, "--worker", str(out), "--epochs",
               str(epochs), "--presets", *presets]
        subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        return json.loads(out.read_text())


def _ddp_run_once(model0: Any, batches: list, epochs: int, monitored: bool) -> tuple[float, ...]:
    """Slowest rank's wall seconds, all ranks' CPU seconds and the records of one DDP run."""
    import torch
    import torch.nn.functional as F

    from explain.monitor import TrainingMonitor
    model = torch.nn.parallel.DistributedDataParallel(copy.deepcopy(model0).train())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    mine = batches[dist.rank()::dist.world_size()]
    steps = min(len(b) for b in (batches[r::dist.world_size()]
                                 for r in range(dist.world_size())))  # the same on every rank
    torch.distributed.barrier()
    start, cpu = time.perf_counter(), time.process_time()
    with TrainingMonitor(model) if monitored else contextlib.nullcontext() as mon:
        for epoch in range(epochs):
            for xb, yb in mine[:steps]:
                opt.zero_grad()
                loss = F.cross_entropy(model(xb), yb)
                loss.backward()
                opt.step()
                if mon is not None:
                    mon.step(loss=loss.detach(), target=yb)
            if mon is not None:
                mon.log_epoch(epoch=epoch + 1, train_loss=loss.item())
    torch.distributed.barrier()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    t = torch.tensor([wall, cpu], dtype=torch.float64)
    peak = t.clone()
    torch.distributed.all_reduce(peak, op=torch.distributed.ReduceOp.MAX)
    torch.distributed.all_reduce(t)
    return float(peak[0]), float(t[1]), len(mon.history.steps) if mon is not None else 0


def _overhead_worker(models: list[str], repeats: int, out: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from monitor_overhead import DEFAULTS, setup
    owned = dist.init_from_env("cpu")
    results: dict[str, Any] = {}
    for name in models:
        model0, batches, source = setup(name, DEFAULTS[name]["batch_size"], None)
        epochs = DEFAULTS[name]["epochs"]
        _ddp_run_once(model0, batches, 1, True)  # warm-up (allocator, threads), not counted
        pairs = []
        for r in range(repeats):
            order = (False, True) if r % 2 == 0 else (True, False)
            got = {m: _ddp_run_once(model0, batches, epochs, m) for m in order}
            pairs.append((got[False], got[True]))
        results[name] = {"pairs": pairs, "source": source, "epochs": epochs,
                         "batch": DEFAULTS[name]["batch_size"]}
    if dist.is_main():
        Path(out).write_text(json.dumps(results))
    if owned:
        dist.destroy()


def _monitor_overhead(models: list[str], repeats: int, nproc: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder, "out.json")
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", __file__, "--overhead-worker", str(out),
               "--repeats", str(repeats), "--models", *models]
        subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        results = json.loads(out.read_text())
    print(f"TrainingMonitor under DDP: {nproc} processes (gloo, 1 thread each), {repeats} "
          f"interleaved pairs; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"  {'model':<6} {'bare s (med)':>12} {'wall B/A med [min-max]':>24} "
          f"{'CPU B/A med [min-max]':>24} {'records':>7}")
    for name, r in results.items():
        bare = [a[0] for a, _ in r["pairs"]]
        wall = [b[0] / a[0] for a, b in r["pairs"]]
        cpu = [b[1] / a[1] for a, b in r["pairs"]]
        print(f"  {name:<6} {statistics.median(bare):12.2f} {statistics.median(wall):10.3f} "
              f"[{min(wall):.3f}-{max(wall):.3f}] {statistics.median(cpu):10.3f} "
              f"[{min(cpu):.3f}-{max(cpu):.3f}] {r['pairs'][0][1][2]:7d}   "
              f"({r['epochs']} epochs, {r['batch']} x {nproc} per step; data: {r['source']})")


def _estimate(name: str, params: float, step_s: float, batch: float) -> list[str]:
    lines = []
    grad_bytes = params * 4
    for n in GPUS:
        volume = grad_bytes * 2 * (n - 1) / n
        parts = []
        for bus, (gbs, latency_us) in BANDWIDTHS.items():
            t_ar = latency_us * 1e-6 + volume / (gbs * 1e9)
            parts.append(f"{bus} {t_ar * 1e6:7.1f} us -> {batch / (step_s + t_ar):9.0f} "
                         "samples/s/GPU (no overlap)")
        lines.append(f"  {name:<16} N={n}: all-reduce {volume / 1e6:8.3f} MB/GPU/step; "
                     + "; ".join(parts))
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["mlp-digits", "rnn-vowels"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--monitor-overhead", action="store_true",
                        help="measure TrainingMonitor's overhead on a DDP loop instead")
    parser.add_argument("--models", nargs="+", default=["cnn", "rnn"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--overhead-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.presets, args.epochs, args.worker)
        return 0
    if args.overhead_worker:
        _overhead_worker(args.models, args.repeats, args.overhead_worker)
        return 0
    if args.monitor_overhead:
        _monitor_overhead(args.models, args.repeats, args.nproc)
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    one = {p: _measure(p, args.epochs) for p in args.presets}
    many = _under_torchrun(args.presets, args.epochs, args.nproc)
    print(f"measured on CPU ({os.cpu_count()} cores, gloo), {args.epochs} epochs, monitor off")
    print(f"  {'preset':<16} {'params':>9} {'1 proc':>12} {f'{args.nproc} procs':>12} "
          f"{'per proc':>12} {'speed-up':>9}")
    for p in args.presets:
        a, b = one[p], many[p]
        print(f"  {p:<16} {a['params']:9.0f} {a['samples_per_s']:10.0f}/s "
              f"{b['samples_per_s']:10.0f}/s {b['samples_per_s'] / args.nproc:10.0f}/s "
              f"{b['samples_per_s'] / a['samples_per_s']:8.2f}x")
    print("estimate for N GPUs (NCCL ring all-reduce of fp32 gradients, parameter bytes x "
          "2(N-1)/N per GPU per step; compute time = the measured 1-process step):")
    for p in args.presets:
        a = one[p]
        for line in _estimate(p, a["params"], a["seconds"] / a["steps"], a["batch"]):
            print(line)
    print("  the other zoo models (parameter bytes; the all-reduce volume scales with them):")
    for name in sorted(set(DEFAULT_PRESETS) - set(args.presets)):
        preset = zoo.get_preset(name)
        kwargs = dict(preset.model_kwargs)
        try:
            net = zoo.create_model(preset.model, **kwargs)
        except Exception as exc:  # a model that needs its data's shape: say so
            print(f"  {name:<16} (parameter count needs its dataset: {type(exc).__name__})")
            continue
        params = sum(q.numel() for q in net.parameters())
        print(f"  {name:<16} {params:9d} params = {params * 4 / 1e6:7.3f} MB fp32; "
              f"N=8: {params * 4 * 2 * 7 / 8 / 1e6:7.3f} MB/GPU/step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
