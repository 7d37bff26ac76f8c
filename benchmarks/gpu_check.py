"""GPU check: the default presets trained with AMP (bf16) on CUDA, the monitor and an audit on
the device; prints throughput, model FLOPs utilisation (MFU) of the transformer and peak memory.

Without a CUDA device it prints one line saying so and exits with status 0 at once (nothing
is imported beyond torch).

MFU of the transformer: training FLOPs per sample ~ 6 x parameters x tokens (forward 2, backward
4 FLOPs per parameter per token; attention's sequence-squared term is left out, so this is a lower
bound), times samples per second, over the device's peak dense bf16 FLOP/s (``--peak-tflops``,
default 989, an H100/H200 SXM).

Usage::

    python benchmarks/gpu_check.py                     # cnn-mnist, rnn-vowels, transformer-rt
    python benchmarks/gpu_check.py --epochs 1 --presets transformer-rt
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

NO_GPU = "gpu_check: no CUDA device here (torch.cuda.is_available() is False); nothing to check."


def _check(preset: str, epochs: int, peak_tflops: float) -> None:
    import zoo

    torch.cuda.reset_peak_memory_stats()
    run = zoo.train(preset=preset, epochs=epochs, device="cuda", amp=True,  # bf16 where supported
                    progress=False)
    torch.cuda.synchronize()
    seconds = float(run.metrics["train_seconds"])
    samples = float(run.metrics["n_train"]) * epochs
    rate = samples / seconds
    train_peak = torch.cuda.max_memory_allocated() / 2**20
    params = sum(p.numel() for p in run.model.parameters())
    line = (f"{preset:<16} {rate:10.0f} samples/s  test acc {run.metrics['test_accuracy']:.3f}  "
            f"peak {train_peak:8.1f} MiB  monitor records {len(run.history.steps)}")
    if run.card is not None and run.card.modality.value == "text":
        x = run.dataset.train.tensors[0] if run.dataset is not None else None
        tokens = int(x.shape[1]) if x is not None and x.ndim == 2 else 0
        flops = 6.0 * params * tokens * rate
        line += f"  MFU {flops / (peak_tflops * 1e12):.2%} ({tokens} tokens, 6*P*T lower bound)"
    print(line, flush=True)
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    report = run.audit(samples=8)
    torch.cuda.synchronize()
    print(f"{'':<16} audit on {next(run.model.parameters()).device}: "
          f"{time.perf_counter() - t0:.1f} s, {report.severity.label}, "
          f"peak {torch.cuda.max_memory_allocated() / 2**20:8.1f} MiB", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=None)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--peak-tflops", dest="peak", type=float, default=989.0)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(NO_GPU)
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from zoo.presets import DEFAULT_PRESETS

    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, bf16 "
          f"{torch.cuda.is_bf16_supported()}")
    for preset in args.presets or DEFAULT_PRESETS:
        _check(preset, args.epochs, args.peak)
    return 0


if __name__ == "__main__":
    sys.exit(main())
