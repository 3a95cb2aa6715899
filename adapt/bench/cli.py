"""``adapt-bench``: run suites of methods x tasks x seeds, report tables and plots, list what exists."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._version import __version__

if TYPE_CHECKING:
    from .report import Report

# Heavy modules (torch, pandas, seaborn) are imported inside the commands that need them, so that
# --help, --version and list answer in well under a second (benchmarks/bench_cli_startup.py).

EPILOG = """examples:
  adapt-bench run --suite quick --out results/            # the offline suite: 6 methods x 4 tasks x 3 seeds
  adapt-bench run --suite quick --methods dann,coral --seeds 1 --jobs 2
  adapt-bench report results/                             # tables (terminal, CSV, Markdown, LaTeX) and plots
  adapt-bench list                                        # methods and hyperparameters, suites, benchmarks
  adapt-bench show optdigits optdigits optdigits-m        # a PNG grid of source and target samples
  adapt-bench study data-efficiency --out results/labels --jobs 2  # accuracy against target labels (offline)
  adapt-bench study training-time --out results/time      # accuracy against training time (offline)
  adapt-bench results pages                               # regenerate docs/results from the committed summaries
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adapt-bench",
        description="Benchmark unsupervised domain adaptation methods. Training never sees target labels; "
        "target labels are used only to score the selected checkpoint.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_run(sub)

    report = sub.add_parser("report", help="print the summary and write CSV, Markdown, LaTeX and plots")
    report.add_argument("results", help="results folder of 'adapt-bench run'")
    report.add_argument("--out", help="where to write the report (default: <results>/report)")
    report.add_argument("--no-figures", action="store_true", help="tables only")

    sub.add_parser(
        "list", help="list methods (hyperparameters, defaults, presets), suites, benchmarks, validators, backbones"
    )

    show = sub.add_parser("show", help="write a PNG grid of source samples above target samples")
    show.add_argument("benchmark")
    show.add_argument("source")
    show.add_argument("target")
    show.add_argument("--root", help="data root for downloadable benchmarks")
    show.add_argument("--download", action="store_true", help="download missing data (verified)")
    show.add_argument("--out", help="PNG path (default: <benchmark>_<source>_<target>.png)")

    _add_study(sub)
    results = sub.add_parser("results", help="the results pages: export a sweep's summary, regenerate the pages",
                             description="Every measured table and figure of README.md and docs/results is "
                             "regenerated from the summaries committed in docs/results/data.")  # fmt: skip
    actions = results.add_subparsers(dest="action", metavar="ACTION", required=True)
    export = actions.add_parser("export", help="write a sweep's or a study's records as CSV summaries")
    export.add_argument("results", help="the results folder of 'adapt-bench run' or 'adapt-bench study'")
    export.add_argument("--name", required=True, help="the suite's (or study's) name: quick, zoo-confirm, ...")
    export.add_argument("--root", default=".", help="the repository root (default: here)")
    export.add_argument("--update", action="store_true", help="the results hold only the runs that changed: "
                        "keep the committed summary's runs that are still current, replace the others")  # fmt: skip
    pages = actions.add_parser("pages", help="regenerate docs/results, README.md's results blocks and "
                               "docs/data/catalogue_methods.csv from the summaries")  # fmt: skip
    pages.add_argument("--root", default=".", help="the repository root (default: here)")
    pages.add_argument("--check", action="store_true", help="write nothing; list what differs (exit status 1)")
    pages.add_argument("--no-figures", action="store_true", help="tables only")
    mark = sub.add_parser("mark-data", help="mark a dataset folder you arranged by hand as complete")
    mark.add_argument("source", help="the download it stands for: office31, officehome, domainnet126 or mnistm")
    mark.add_argument("--data-root", required=True, help="the folder holding it")
    return parser


def _add_study(sub: Any) -> None:
    study = sub.add_parser("study", help="the transfer studies: target labels saved, training time saved",
                           description="Both studies train on labeled target examples of an inductive split "
                           "and score on its disjoint test split; a rerun finishes an interrupted study.")  # fmt: skip
    study.add_argument("name", choices=("data-efficiency", "training-time"))
    study.add_argument("--out", required=True, help="results folder (one study per folder)")
    study.add_argument("--tasks", help="comma-separated benchmark:source:target (default: the offline image tasks "
                       "optdigits:optdigits:optdigits-m,optdigits-shifts:clean:blur)")  # fmt: skip
    study.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    study.add_argument("--steps", type=int, help="training steps from scratch (default 500; training-time: 1000)")
    study.add_argument("--finetune-steps", type=int, help="fine-tuning steps (default 250; training-time: 1000)")
    study.add_argument("--shots", help="labeled examples per class, comma-separated (default 0,1,3,5,10,25,all)")
    study.add_argument("--backbone", default="convnet", help="backbone kind (adapt-bench list; default convnet)")
    study.add_argument("--weights", help="torchvision weights of a resnet backbone, read from the local torch "
                       "cache (for example IMAGENET1K_V1)")  # fmt: skip
    study.add_argument("--data-root", help="folder holding downloadable datasets (default: $ADAPT_DATA_ROOT or ./data)")
    study.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda', ... (default auto)")
    study.add_argument("--jobs", type=int, default=1, help="worker processes, one task and seed each (default 1)")
    study.add_argument("--download", action="store_true", help="fetch missing datasets first (checksums verified)")
    study.add_argument("--no-figures", action="store_true", help="tables only")
    study.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_run(sub: Any) -> None:
    run = sub.add_parser("run", help="run a suite (resumes: finished runs are skipped)", epilog=EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    run.add_argument(
        "--suite", default="quick", help="a shipped suite's name (adapt-bench list) or a .toml path (default: quick)"
    )
    run.add_argument("--methods", help="comma-separated subset of the suite's methods (default: all of them)")
    run.add_argument("--seeds", type=int, help="number of seeds, 0..N-1 (default: the suite's)")
    run.add_argument("--out", default="results", help="results folder; records go to <out>/runs (default: results)")
    run.add_argument(
        "--jobs", type=int, default=1, help="worker processes (a run uses one torch thread: this moves no number)"
    )
    run.add_argument(
        "--device", default="auto", help="'auto' (CUDA if available), 'cpu', 'cuda', 'cuda:1' (default: auto)"
    )
    run.add_argument("--executor", choices=("local", "ray"), default="local",
                     help="local: processes on this machine (--jobs); ray: one Ray task per run (pip install "
                     "'adapt-uda[ray]')")  # fmt: skip
    run.add_argument("--address", help="Ray cluster address (default: start Ray on this machine)")
    run.add_argument("--cpus-per-run", type=int, default=1, help="CPUs each Ray task reserves (default 1)")
    run.add_argument("--gpus-per-run", type=float, default=0.0, help="GPUs each Ray task reserves (default 0)")
    run.add_argument(
        "--data-root",
        help="folder holding the downloadable datasets (default: the suite's data_root, else $ADAPT_DATA_ROOT, "
        "else ./data)",
    )
    run.add_argument("--download", action="store_true", help="fetch missing datasets first (checksums verified)")
    run.add_argument("--retry-failed", action="store_true", help="rerun runs whose record says 'failed'")
    run.add_argument("--keep-stale", action="store_true",
                     help="keep records made with other defaults or code (stale) instead of rerunning them; the "
                     "report marks them")  # fmt: skip
    run.add_argument("--checkpoint-seconds", type=float, default=60.0,
                     help="save each run's training state this often; a killed run resumes from it (default 60; "
                     "0: off)")  # fmt: skip
    run.add_argument("--checkpoint-every", type=int, default=0, help="also save it every this many steps (default 0)")
    run.add_argument("--loggers", default="", help="comma-separated experiment trackers each run logs to: "
                     "tensorboard (<out>/tensorboard/<run id>), mlflow (at $MLFLOW_TRACKING_URI)")  # fmt: skip
    run.add_argument("--no-report", action="store_true", help="do not write the report after the sweep")
    run.add_argument("--quiet", action="store_true", help="no progress bars")


def _print_report(result: Report) -> None:
    print(result.caption)
    print(result.table.to_string())
    if not result.failed.empty:
        print(f"\n{len(result.failed)} failed run(s):")
        print(result.failed.to_string(index=False))
    if result.transfer is not None:
        print(f"\n{result.transfer_caption}")
        print(result.transfer.to_string())
    if result.backends is not None:
        print(f"\n{result.backends_caption}")
        print(result.backends.to_string())
    if result.selection_table is not None:
        print(f"\n{result.selection_caption}")
        print(result.selection_table.to_string())
        print(f"\n{result.quality_caption}")
        quality = result.quality
        # many tasks: one row per task reads better than a line wider than the terminal
        shown = quality.map(lambda v: "n/a" if v != v else f"{v:.3f}")  # v != v: NaN, an undefined correlation
        print((shown.T if shown.shape[1] > 6 else shown).to_string())
        if not result.study.empty:
            print(f"\n{result.study_caption}")
            study = result.study
            print(study.assign(**{"negative transfer": study["negative transfer"].map(lambda v: f"{100 * v:.0f}%")})
                  .round(2).to_string())  # fmt: skip
    if result.published is not None:
        table, caption = result.published
        print(f"\n{caption}")
        print(table.to_string())
    files = ", ".join(sorted(p.name for p in result.out.iterdir() if p.is_file()))
    print(f"\nwritten to {result.out}: {files}")


def cmd_run(args: argparse.Namespace) -> int:
    from .executors import Executor
    from .report import write_report
    from .runner import SweepOptions, check_device, run_sweep
    from .suite import load_suite

    suite = load_suite(args.suite)
    methods = [m.strip() for m in args.methods.split(",")] if args.methods else None
    if args.seeds is not None and args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    if args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
    if not str(args.out).strip():
        raise ValueError("--out is empty; give the folder for the results (for example --out results)")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise ValueError(f"--out {args.out} is a file; give a folder for the results")
    if args.executor == "local":
        check_device(args.device)  # Ray tasks run elsewhere: their devices are the cluster's
    elif args.device.startswith("cuda") and args.gpus_per_run <= 0:
        raise ValueError("--device cuda with --executor ray needs --gpus-per-run (for example 1): a task that "
                         "reserves no GPU would share whichever GPU it sees")  # fmt: skip
    if args.checkpoint_seconds < 0 or args.checkpoint_every < 0:
        raise ValueError("--checkpoint-seconds and --checkpoint-every must be >= 0")
    executor = Executor(args.executor, args.address, args.cpus_per_run, args.gpus_per_run)
    options = SweepOptions(
        methods=tuple(methods) if methods else None, seeds=args.seeds, jobs=args.jobs, device=args.device,
        data_root=args.data_root, download=args.download, retry_failed=args.retry_failed, keep_stale=args.keep_stale,
        verbose=False if args.quiet else None, checkpoint_every=args.checkpoint_every,
        checkpoint_seconds=args.checkpoint_seconds, executor=executor,
        loggers=tuple(n for n in args.loggers.split(",") if n),
    )  # fmt: skip
    counts = run_sweep(suite, args.out, options)
    _print_counts(suite.name, counts, args.keep_stale)
    if not args.no_report:
        print()
        _print_report(write_report(args.out))
    return 1 if counts["failed"] or counts["failed_before"] else 0


def _print_counts(name: str, counts: dict[str, Any], keep_stale: bool) -> None:
    """What a sweep did, and what to do about what it could not."""
    if counts["stale"]:
        what = ("kept (--keep-stale), not rerun; the report marks them" if keep_stale else
                "rerun; the old records are in runs/stale/")  # fmt: skip
        print(f"{counts['stale_summary']}\n  {what}")
    print(f"suite {name}: {counts['total']} runs, {counts['skipped']} already done, "
          f"{counts['ok']} finished now, {counts['failed']} failed")  # fmt: skip
    if counts["elsewhere"]:
        print(f"{counts['elsewhere']} run(s) were left to another sweep into the same folder, which was running "
              "or had finished them; rerun (or report) once it is done")  # fmt: skip
    if counts["failed_before"]:
        print(f"{counts['failed_before']} run(s) failed in an earlier sweep and were not retried; "
              "rerun with --retry-failed to try them again")  # fmt: skip
    elif counts["failed"]:
        print(f"{counts['failed']} run(s) failed (reasons below and in their records); after fixing the cause, "
              "rerun with --retry-failed")  # fmt: skip


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    _print_report(write_report(args.results, args.out, figures=not args.no_figures))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from .listing import render

    print(render(), end="")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from ..data import show, task

    path = show(task(args.benchmark, args.source, args.target, args.root, download=args.download), args.out)
    print(f"wrote {path}")
    return 0


def _is_user_error(exc: Exception) -> bool:
    """Errors a user fixes from the message alone: printed as one line, without a traceback."""
    from ..errors import MissingDataError

    # OSError: a full disk, a folder that is a file, no permission -- the message names the path
    # ImportError: an optional extra that is not installed (the message says which)
    return isinstance(exc, (ValueError, OSError, TypeError, ImportError, MissingDataError))


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the queue is cancelled, the workers stop, finished runs stay."""


_TERMINATED: list[bool] = []  # set by the SIGTERM handler: cleanup may raise another interrupt on top


def _raise_terminated(signum: int, frame: object) -> None:
    _TERMINATED.append(True)
    raise Terminated


def _warning_line(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> str:
    return f"adapt-bench: warning: {message}\n"


def cmd_study(args: argparse.Namespace) -> int:
    import pandas as pd

    from .studies import DEFAULT_TASKS, SHOTS, StudySettings, data_efficiency, parse_task, training_time

    tasks = [t.strip() for t in args.tasks.split(",")] if args.tasks else list(DEFAULT_TASKS)
    for spec in tasks:
        parse_task(spec)
    if args.seeds < 1 or args.jobs < 1:
        raise ValueError(f"--seeds and --jobs must be >= 1, got {args.seeds} and {args.jobs}")
    time_study = args.name == "training-time"
    shots = [s if s == "all" else int(s) for s in args.shots.split(",")] if args.shots else list(SHOTS)
    backbone = {"kind": args.backbone, **({"weights": args.weights} if args.weights else {})}
    settings = StudySettings(
        tasks=tasks, seeds=args.seeds, steps=args.steps or (1000 if time_study else 500),
        finetune_steps=args.finetune_steps or (1000 if time_study else 250), backbone=backbone, shots=shots,
        data_root=args.data_root or os.environ.get("ADAPT_DATA_ROOT") or "data", device=args.device,
        download=args.download,
    )  # fmt: skip
    run = training_time if time_study else data_efficiency
    result = run(args.out, settings, verbose=False if args.quiet else None, figures=not args.no_figures, jobs=args.jobs)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        if time_study:
            print("Training time to the goal (scratch's final accuracy - 2 points), mean over seeds:")
            print(result["time_to_accuracy"].to_string(index=False))
        else:
            summary = result["summary"]
            table = summary.pivot_table(index=["task", "approach"], columns="shots", values="mean", sort=False)
            print("Target test accuracy (%) by labeled target examples per class, mean over seeds:")
            print(table[[str(s) for s in shots if str(s) in table.columns]].round(1).to_string())
            print("\nTarget labels needed to reach TargetOnly-with-all-labels - 2 points:")
            print(result["labels_needed"].to_string(index=False))
    files = ", ".join(sorted(p.name for p in result["out"].iterdir() if p.is_file()))
    print(f"\nwritten to {result['out']}: {files}")
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    from . import results

    if args.action == "export":
        for path in results.export(args.results, args.name, args.root, update=args.update):
            print(f"wrote {path}")
        return 0
    if args.check:
        problems = results.check_pages(args.root)
        for line in problems:
            print(line)
        print("the results pages are what the summaries give" if not problems else f"{len(problems)} file(s) differ")
        return 1 if problems else 0
    for path in results.write_pages(args.root, figures=not args.no_figures):
        print(f"wrote {path}")
    return 0


def cmd_mark_data(args: argparse.Namespace) -> int:
    from ..data.download import mark_complete

    print(f"wrote {mark_complete(args.source, args.data_root)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {"run": cmd_run, "report": cmd_report, "list": cmd_list, "show": cmd_show, "study": cmd_study,
                "results": cmd_results, "mark-data": cmd_mark_data}  # fmt: skip
    handler = handlers[args.command]
    formatwarning, warnings.formatwarning = warnings.formatwarning, _warning_line  # one plain line each
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        return handler(args)
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated) or bool(_TERMINATED)
        what = "terminated (SIGTERM)" if terminated else "interrupted"
        print(f"{what}; finished runs are saved, rerun the same command to resume", file=sys.stderr)
        return 143 if terminated else 130
    except Exception as exc:
        if not _is_user_error(exc) or os.environ.get("ADAPT_DEBUG") == "1":  # ADAPT_DEBUG=1: the traceback
            raise
        print(f"adapt-bench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = formatwarning
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
