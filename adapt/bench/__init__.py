"""The benchmark harness behind ``adapt-bench``: suites, resumable sweeps, reports.

Names are imported on first use, so the command line starts without torch or pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "RunSpec": "adapt.bench.runner",
    "execute": "adapt.bench.runner",
    "expand": "adapt.bench.runner",
    "read_records": "adapt.bench.runner",
    "run_sweep": "adapt.bench.runner",
    "SweepOptions": "adapt.bench.runner",
    "PROTOCOLS": "adapt.bench.protocols",
    "Protocol": "adapt.bench.protocols",
    "Suite": "adapt.bench.suite",
    "SuiteError": "adapt.bench.suite",
    "available_suites": "adapt.bench.suite",
    "load_suite": "adapt.bench.suite",
    "leaderboard": "adapt.bench.report",
    "runs_frame": "adapt.bench.report",
    "summarize": "adapt.bench.report",
    "write_report": "adapt.bench.report",
}

if TYPE_CHECKING:
    from .protocols import PROTOCOLS, Protocol
    from .report import leaderboard, runs_frame, summarize, write_report
    from .runner import RunSpec, SweepOptions, execute, expand, read_records, run_sweep
    from .suite import Suite, SuiteError, available_suites, load_suite


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        try:  # a submodule: adapt.bench.runner, adapt.bench.report ...
            value = importlib.import_module(f"adapt.bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"adapt.bench.{name}":  # a dependency of a real submodule is missing: say so
                raise
            raise AttributeError(f"module 'adapt.bench' has no attribute {name!r}") from exc
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "PROTOCOLS",
    "Protocol",
    "RunSpec",
    "Suite",
    "SuiteError",
    "SweepOptions",
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
