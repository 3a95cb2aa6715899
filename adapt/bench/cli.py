"""``adapt-bench``: run suites of methods x tasks x seeds, report tables and plots, list what exists."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

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

    run = sub.add_parser("run", help="run a suite (resumes: finished runs are skipped)", epilog=EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    run.add_argument(
        "--suite", default="quick", help="a shipped suite's name (adapt-bench list) or a .toml path (default: quick)"
    )
    run.add_argument("--methods", help="comma-separated subset of the suite's methods (default: all of them)")
    run.add_argument("--seeds", type=int, help="number of seeds, 0..N-1 (default: the suite's)")
    run.add_argument("--out", default="results", help="results folder; records go to <out>/runs (default: results)")
    run.add_argument(
        "--jobs", type=int, default=1, help="parallel worker processes (CPU threads are shared fairly; one GPU each)"
    )
    run.add_argument(
        "--device", default="auto", help="'auto' (CUDA if available), 'cpu', 'cuda', 'cuda:1' (default: auto)"
    )
    run.add_argument(
        "--data-root",
        help="folder holding the downloadable datasets (default: the suite's data_root, else $ADAPT_DATA_ROOT, "
        "else ./data)",
    )
    run.add_argument("--download", action="store_true", help="fetch missing datasets first (checksums verified)")
    run.add_argument("--retry-failed", action="store_true", help="rerun runs whose record says 'failed'")
    run.add_argument("--no-report", action="store_true", help="do not write the report after the sweep")
    run.add_argument("--quiet", action="store_true", help="no progress bars")

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
    return parser


def _print_report(result: Report) -> None:
    print(result.caption)
    print(result.table.to_string())
    if not result.failed.empty:
        print(f"\n{len(result.failed)} failed run(s):")
        print(result.failed.to_string(index=False))
    if result.transfer is not None:
        print(f"\n{result.transfer_caption}")
        print(result.transfer.to_string())
    if result.selection_table is not None:
        print(f"\n{result.selection_caption}")
        print(result.selection_table.to_string())
        print(f"\n{result.quality_caption}")
        quality = result.quality
        # many tasks: one row per task reads better than a line wider than the terminal
        print((quality.T if quality.shape[1] > 6 else quality).round(3).to_string())
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
    from .report import write_report
    from .runner import check_data, run_sweep
    from .suite import load_suite

    suite = load_suite(args.suite)
    methods = [m.strip() for m in args.methods.split(",")] if args.methods else None
    if args.seeds is not None and args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    if args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
    check_data(suite, args.data_root, args.download)
    counts = run_sweep(suite, args.out, methods, args.seeds, args.jobs, args.device, args.data_root,
                       args.retry_failed, verbose=False if args.quiet else None)  # fmt: skip
    print(f"suite {suite.name}: {counts['total']} runs, {counts['skipped']} already done, "
          f"{counts['ok']} finished now, {counts['failed']} failed")  # fmt: skip
    if counts["failed_before"]:
        print(f"{counts['failed_before']} run(s) failed in an earlier sweep and were not retried; "
              "rerun with --retry-failed to try them again")  # fmt: skip
    if not args.no_report:
        print()
        _print_report(write_report(args.out))
    return 1 if counts["failed"] or counts["failed_before"] else 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    _print_report(write_report(args.results, args.out, figures=not args.no_figures))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from .listing import listing

    print(listing(), end="")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from ..data import show, task

    path = show(task(args.benchmark, args.source, args.target, args.root, download=args.download), args.out)
    print(f"wrote {path}")
    return 0


def _is_user_error(exc: Exception) -> bool:
    """Errors a user fixes from the message alone: printed as one line, without a traceback."""
    from .runner import MissingDataError

    return isinstance(exc, (ValueError, FileNotFoundError, TypeError, MissingDataError))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {"run": cmd_run, "report": cmd_report, "list": cmd_list, "show": cmd_show}[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted; finished runs are saved, rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:
        if not _is_user_error(exc):
            raise
        print(f"adapt-bench {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
