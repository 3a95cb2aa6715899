"""The benchmark harness behind ``adapt-bench``: suites, resumable sweeps, reports."""

from .report import leaderboard, runs_frame, summarize, write_report
from .runner import RunSpec, execute, expand, read_records, run_sweep
from .suite import Suite, SuiteError, available_suites, load_suite

__all__ = [
    "RunSpec",
    "Suite",
    "SuiteError",
    "available_suites",
    "execute",
    "expand",
    "leaderboard",
    "load_suite",
    "read_records",
    "run_sweep",
    "runs_frame",
    "summarize",
    "write_report",
]
