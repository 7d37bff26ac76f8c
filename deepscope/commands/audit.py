"""``deepscope audit RUN_DIR``: audit a zoo run folder and write an HTML, JSON or Markdown report.

Exit codes (for CI gating): 0 no finding at or above ``--fail-on``; 1 at least one; 2 bad input
(a missing, corrupt or hostile run folder, or bad options), reported in one line, no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepscope._distributed import Session, add_nproc_argument, relaunch
from explain._core import distributed as dist
from explain.errors import DeepscopeError
from explain.findings import Severity

if TYPE_CHECKING:
    from explain.checks.data_sufficiency import LearningCurve
    from zoo.run import Run

__all__ = ["NAME", "HELP", "add_arguments", "run", "main"]

NAME = "audit"
HELP = "audit a run folder: training health, performance, explanations -> report"
_FORMATS = (".html", ".htm", ".json", ".md")


def _samples(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an int >= 0. Got {text!r} instead")
    return value


def _out(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() not in _FORMATS:
        raise argparse.ArgumentTypeError(
            f"must end in .html, .json or .md (the extension picks the format). Got {text!r}")
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``run_dir``, ``--out``, ``--fail-on`` and ``--samples`` to ``parser``."""
    parser.add_argument("run_dir", type=Path, help="a run folder (model.safetensors + run.json)")
    parser.add_argument("--out", type=_out, default=None,
                        help="report file: .html, .json or .md (default: RUN_DIR/report.html)")
    parser.add_argument("--fail-on", dest="fail_on", choices=["warn", "fail"], default="fail",
                        help="exit 1 if any finding is at or above this severity (default: fail)")
    parser.add_argument("--samples", type=_samples, default=8,
                        help="inputs to explain, spread over the classes (default: 8)")
    parser.add_argument("--learning-curve", dest="learning_curve", action="store_true",
                        help="retrain the run's recipe on 1/8, 1/4, 1/2 of its training data "
                             "(~0.9x the training cost) to say whether more data would help")
    parser.add_argument("--data-sanity", dest="data_sanity", action="store_true",
                        help="retrain the run's recipe on permuted labels (~0.5x the training "
                             "cost) and check each explanation changes (Adebayo et al. 2018)")
    add_nproc_argument(parser, "audit")


def _argv(args: argparse.Namespace) -> list[str]:
    """``args`` as the command line of this command (for :func:`relaunch`), without --nproc."""
    argv = ["audit", str(args.run_dir), "--fail-on", args.fail_on or "fail",
            "--samples", str(args.samples if args.samples is not None else 8)]
    argv += ["--out", str(args.out)] if args.out is not None else []
    argv += ["--learning-curve"] if getattr(args, "learning_curve", False) else []
    argv += ["--data-sanity"] if getattr(args, "data_sanity", False) else []
    return argv + (["--quiet"] if getattr(args, "quiet", False) else [])


def _error(msg: str) -> int:
    first = str(msg).strip().splitlines()[0] if str(msg).strip() else "unknown error"
    print(f"deepscope audit: error: {first}", file=sys.stderr)
    return 2


def _progress(quiet: bool) -> tuple[Callable[[str, int, int], None] | None, Any]:
    """A rich progress bar on stderr (``None`` when quiet)."""
    if quiet:
        return None, None
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("audit: {task.description:<14}"), BarColumn(), TimeElapsedColumn(),
                   console=Console(stderr=True), transient=False)
    task = bar.add_task("loading run", total=6)

    def update(stage: str, done: int, total: int) -> None:
        bar.update(task, description=stage, completed=done + 1, total=total + 1)

    bar.start()
    return update, bar


def _load(run_dir: Path) -> Run:
    import zoo

    if not run_dir.exists():
        raise FileNotFoundError(f"The run folder {str(run_dir)!r} does not exist. Train one with "
                                "`deepscope train PRESET --out DIR` or pass an existing folder.")
    try:
        return zoo.load_run(run_dir)
    except (DeepscopeError, OSError):
        raise
    except Exception as exc:  # a damaged folder must not surface as a traceback
        raise _Unreadable(f"The run folder {str(run_dir)!r} could not be loaded "
                          f"({type(exc).__name__}: {exc}). Re-create it with deepscope train.") from exc


class _Unreadable(Exception):
    pass


def _curve(run_: Run, quiet: bool) -> LearningCurve:
    """The run's learning curve with its fit (``zoo.learning_curve``); its prediction printed
    unless quiet. The report's data-sufficiency section keeps the fit."""
    from zoo.learning import learning_curve

    curve = learning_curve(run_, progress=not quiet)
    if not quiet:
        print(curve.summary, file=sys.stderr)
    return curve


def run(args: argparse.Namespace) -> int:
    """Audit ``args.run_dir``; write the report; return 0, 1 (findings) or 2 (bad input).

    With ``--nproc N`` (N > 1) the audit is relaunched on N processes under torchrun; under
    torchrun the scoring and the explanations are sharded across the ranks
    (:mod:`explain.auditing.sharding`) and rank 0 alone prints and writes the report.
    """
    nproc = int(getattr(args, "nproc", 1) or 1)
    if nproc > 1:
        return relaunch(nproc, _argv(args))
    with Session() as session:
        return session.finish(_audit(args, quiet=bool(getattr(args, "quiet", False))
                                     or not dist.is_main()))


def _audit(args: argparse.Namespace, *, quiet: bool) -> int:
    out = Path(args.out) if args.out is not None else Path(args.run_dir) / "report.html"
    if out.suffix.lower() not in _FORMATS:
        return _error(f"--out must end in .html, .json or .md. Got {str(out)!r}.")
    update, bar = _progress(quiet)
    try:
        run_ = _load(Path(args.run_dir))
        wants_curve = getattr(args, "learning_curve", False) and dist.is_main()
        curve = _curve(run_, quiet) if wants_curve else None
        report = run_.audit(samples=args.samples if args.samples is not None else 8,
                            progress=update, learning_curve=curve,
                            data_sanity=bool(getattr(args, "data_sanity", False)))
    except (DeepscopeError, OSError, _Unreadable) as exc:
        if bar is not None:
            bar.stop()
        return _error(str(exc))
    if bar is not None:
        bar.stop()
    if not dist.is_main():
        return 1 if report.findings_at_least(args.fail_on or "fail") else 0
    try:
        report.save(out)
    except (DeepscopeError, OSError) as exc:
        return _error(f"could not write the report to {str(out)!r}: {exc}")
    level = args.fail_on or "fail"
    gated = report.findings_at_least(level)
    if not quiet:
        print(f"{report.severity.label}: {report.headline}")
        for f in report.findings:
            if f.severity >= Severity.WARN:
                print(f"  [{f.severity.value}] {f.check}: {f.summary}")
        print(f"report: {out}")
    return 1 if gated else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run this command alone: ``python -m deepscope.commands.audit RUN_DIR ...``."""
    parser = argparse.ArgumentParser(prog="deepscope audit", description=HELP)
    add_arguments(parser)
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
