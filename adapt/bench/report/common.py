"""What the report's tables and figures share: the 95% interval, the cell and interval formats, task
names for sorting and for axes, and the lazily imported plotting libraries (the ``bench`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from ..._optional import require
from ..protocols import DEFAULT_PROTOCOL, PROTOCOLS, Protocol

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def runs_protocol(runs: pd.DataFrame) -> Protocol | None:
    """The protocol every one of ``runs`` was run under (None when they mix protocols or there are none)."""
    names = set(runs["adaptation"]) if "adaptation" in runs else {DEFAULT_PROTOCOL}
    return PROTOCOLS.get(next(iter(names))) if len(names) == 1 and next(iter(names)) in PROTOCOLS else None


def streamed_once(runs: pd.DataFrame) -> bool:
    """Whether ``runs`` are scored online (one pass over the target stream, nothing trained on it)."""
    protocol = runs_protocol(runs)
    return protocol is not None and not protocol.trains_on_target


def ci95(values: pd.Series) -> float:
    """Half-width of the 95 % t-interval of the mean (NaN with fewer than two values)."""
    n = values.count()
    if n < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / np.sqrt(n))


def cell(mean: float, ci: float) -> str:
    """'mean ± ci' with one decimal, 'mean' without an interval, '-' without a mean."""
    if np.isnan(mean):
        return "-"
    return f"{mean:.1f} ± {ci:.1f}" if not np.isnan(ci) else f"{mean:.1f}"


def interval(low: float, high: float) -> str:
    return "-" if np.isnan(low) else f"[{low:+.1f}, {high:+.1f}]"


def task_key(name: str) -> tuple[str, int]:
    """Sort tasks by name, then by budget as a number ('x @500' before 'x @3000')."""
    base, _, budget = name.partition(" @")
    return base, int(budget) if budget.isdigit() else 0


def task_label(name: str) -> str:
    """A task name on several short lines, for figure axes (long shift names break after the arrow)."""
    lines = name.replace(" @", "/@").split("/")
    lines = [line.replace("->", "->\n") if len(line) > 16 else line for line in lines]
    return "\n".join(lines)


def seaborn() -> Any:
    return require("seaborn", "bench", "the report's figures")


def pyplot() -> Any:
    return require("matplotlib.pyplot", "bench", "the report's figures")


def save_figure(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a 120 dpi PNG and close it."""
    plt = pyplot()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
