"""Attribution throughput against the forward+backward limit, and against captum's default.

For each zoo model (on its own data set) and method, prints samples/s of ``explain.attribute``,
the limit (best batched forward+backward rows/s divided by the model evaluations one sample
needs), the ratio, the first call's samples/s (it includes measuring the batch size, which is
then cached per model), captum's default for integrated gradients in the same run, and peak memory
(RSS growth of a fresh subprocess per setting; tracemalloc cannot see torch). Repeats are
interleaved; medians and spreads (min-max) are reported.

    python benchmarks/attribution.py                      # IG on every zoo model
    python benchmarks/attribution.py --methods all --batch 64 --repeats 3
    python benchmarks/attribution.py --models cnn --batch 256 --n-steps 50 --memory

Goal (issue 4): IG >= 0.9x of the limit on every zoo model, >= 1.8x captum's default on the CNN.
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout works uninstalled

DATA = {"cnn": "mnist-5k", "rnn": "japanese-vowels", "transformer": "rotten-tomatoes",
        "mlp": "digits"}
FAST = {"integrated_gradients": {}, "deeplift": {}, "gradient_shap": {"n_samples": 16},
        "smoothgrad": {"nt_samples": 16}, "shap_gradient": {"nsamples": 32},
        "shap_kernel": {"nsamples": 64}}


def setup(name: str, batch: int, device: str):
    """(model, inputs, target) for zoo model ``name`` on ``batch`` test samples of its data."""
    import zoo

    bundle = zoo.load_dataset(DATA[name])
    torch.manual_seed(0)
    model = zoo.create_model(name, **bundle.model_kwargs()).eval().to(device)
    x = bundle.test.tensors[0][:batch].to(device)
    with torch.no_grad():
        target = model(x).argmax(1)
    return model, x, target


def fwd_bwd_limit(model, x, target, sizes=(16, 32, 64, 128, 256, 512, 1024, 2048)):
    """The physical limit as a job: ``run(rows)`` pushes ``rows`` rows through forward +
    backward to the input (the embedding output for token ids) in passes of the fastest size.

    Returns ``(run, best_size, best_rows_per_s)``; the size is the one with the highest rows/s
    (best of 3 passes each). The benchmark times ``run`` interleaved with the method, so both
    see the same machine state.
    """
    from explain.attribution.prepare import EmbeddingForward, PlainForward

    if x.dtype == torch.int64:
        emb = model.get_submodule(model.card.layers["embedding"])
        forward, args = EmbeddingForward(model, emb), (x,)
        with torch.no_grad():
            inp = emb(x)
    else:
        forward, args, inp = PlainForward(model), (), x

    def batch(rows):
        idx = torch.arange(rows, device=x.device) % x.shape[0]
        return inp[idx].clone(), tuple(a[idx] for a in args), target[idx]

    def one_pass(xi, ai, ti):
        xg = xi.detach().requires_grad_(True)
        out = forward(xg, *ai).gather(1, ti[:, None]).sum()
        torch.autograd.grad(out, xg)

    best, best_rate = sizes[0], 0.0
    for rows in sizes:
        b = batch(rows)
        times = []
        for _ in range(3):
            times.append(timed(functools.partial(one_pass, *b), x))
        if rows / min(times[1:]) > best_rate:
            best, best_rate = rows, rows / min(times[1:])
    full = batch(best)

    def run(total_rows: int) -> None:
        done = 0
        while done < total_rows:
            k = min(best, total_rows - done)
            one_pass(full[0][:k], tuple(a[:k] for a in full[1]), full[2][:k])
            done += k
        _sync(x)

    return run, best, best_rate


def _sync(x: torch.Tensor) -> None:
    if x.is_cuda:
        torch.cuda.synchronize(x.device)


def timed(fn: Callable[[], object], x: torch.Tensor) -> float:
    start = time.perf_counter()
    fn()
    _sync(x)
    return time.perf_counter() - start


def captum_default(model, x, target, n_steps: int):
    """captum's IntegratedGradients as a user would call it (no internal_batch_size)."""
    from captum.attr import IntegratedGradients, LayerIntegratedGradients

    if x.dtype == torch.int64:
        emb = model.get_submodule(model.card.layers["embedding"])
        return LayerIntegratedGradients(model, emb).attribute(
            x, baselines=torch.zeros_like(x), target=target, n_steps=n_steps)
    return IntegratedGradients(model).attribute(x, target=target, n_steps=n_steps)


def evaluations(method: str, model, x, options: dict) -> int:
    from explain.attribution import get_explainer
    from explain.attribution.base import Job
    from explain.attribution.preflight import Trace

    job = Job(model=model, card=model.card, modality=model.card.modality.value, inputs=x,
              x=x if x.is_floating_point() else torch.zeros(*x.shape, 1), baselines=x,
              args=(), forward=model, target=torch.zeros(len(x), dtype=torch.long),
              trace=Trace(), token_ids=None if x.is_floating_point() else x)
    return get_explainer(method)(model).evaluations(job, options)


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
        explain.attribute(model, x, target, method="integrated_gradients", n_steps=cfg["n_steps"])
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
    return f"{med:9.1f} [{min(values):.1f}-{max(values):.1f}]"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="cnn,rnn,transformer,mlp")
    p.add_argument("--methods", default="integrated_gradients",
                   help="comma list, or 'all'")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--n-steps", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--memory", action="store_true", help="measure peak RSS per setting")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads (0: torch's default); 1 is steadier on a busy machine")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return memory_child(args.child)
    if args.threads:
        torch.set_num_threads(args.threads)

    import explain
    from explain.attribution import list_methods
    from explain.attribution.batching import clear_cache

    methods = list_methods() if args.methods == "all" else args.methods.split(",")
    print(f"device={args.device} threads={torch.get_num_threads()} batch={args.batch} "
          f"n_steps={args.n_steps} repeats={args.repeats} (median [min-max])")
    print(f"{'model':12}{'method':22}{'1st call':>10}{'samples/s':>24}{'limit':>24}{'ratio':>7}"
          f"{'captum default':>26}{'ours/captum':>12}")
    for name in args.models.split(","):
        model, x, target = setup(name, args.batch, args.device)
        limit_run, limit_size, _ = fwd_bwd_limit(model, x, target)
        print(f"{name}: the limit runs {limit_size} rows per forward+backward pass", flush=True)
        for method in methods:
            options = dict(FAST.get(method, {}))
            if method in ("integrated_gradients", "deeplift"):
                options["n_steps"] = args.n_steps
            try:
                explain.attribute(model, x[:2], target[:2], method=method, **options)  # warm
            except explain.InvalidInputError as err:
                print(f"{name:12}{method:22}  skipped: {str(err)[:70]}")
                continue
            evals = evaluations(method, model, x, options)
            clear_cache()   # the first full-size call measures the batch size (the probe)
            first = len(x) / timed(functools.partial(
                explain.attribute, model, x, target, method=method, **options), x)
            ours, theirs, limits = [], [], []
            for _ in range(args.repeats):  # interleaved: ours, limit, captum, ours, ...
                ours.append(len(x) / timed(functools.partial(
                    explain.attribute, model, x, target, method=method, **options), x))
                limits.append(len(x) / timed(functools.partial(limit_run, len(x) * evals), x))
                if method == "integrated_gradients":
                    theirs.append(len(x) / timed(functools.partial(
                        captum_default, model, x, target, args.n_steps), x))
            limit = statistics.median(limits)
            ratio = statistics.median(ours) / limit
            line = (f"{name:12}{method:22}{first:10.1f}{fmt(ours):>24}{fmt(limits):>24}"
                    f"{ratio:7.2f}")
            if theirs:
                line += f"{fmt(theirs):>26}{statistics.median(ours) / statistics.median(theirs):12.2f}"
            print(line, flush=True)
        if args.memory:
            mine = peak_mib("ours", name, args.batch, args.n_steps, args.device)
            cap = peak_mib("captum", name, args.batch, args.n_steps, args.device)
            print(f"{name:12}{'peak RSS growth (MiB)':34}ours {mine:8.0f}   captum default "
                  f"{cap:8.0f}", flush=True)


if __name__ == "__main__":
    main()
