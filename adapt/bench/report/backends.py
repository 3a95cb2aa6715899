"""Two implementations of the same method side by side: ours (``dann``) and pytorch-adapt's
(``pa:dann``, see :mod:`adapt.methods.pa_backend`), paired on the same task, seed and budget."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .common import cell, ci95
from .tables import to_markdown

PREFIX = "pa:"


def backend_comparison(runs: pd.DataFrame) -> pd.DataFrame:
    """Per method that ran in both implementations: each one's target accuracy (%, mean ± 95% CI over
    the (task, seed) pairs both finished) and the paired difference, ours minus pytorch-adapt's.

    Parameters
    ----------
    runs : pandas.DataFrame
        Rows of :func:`~adapt.bench.report.tables.runs_frame` (the headline runs; ``score`` a fraction).

    Returns
    -------
    pandas.DataFrame
        One row per shared method (empty when no method ran in both): columns adapt, pytorch-adapt,
        difference (points) as 'mean ± ci' strings, pairs (both finished) and failed (runs of each
        implementation that failed or diverged: ours / theirs).
    """
    ok = runs[runs.status == "ok"]
    failures = runs[runs.status != "ok"]["method"].value_counts()
    keys = ["task", "seed"] + (["budget"] if "budget" in ok.columns and ok["budget"].notna().any() else [])
    rows = {}
    for name in sorted({m[len(PREFIX) :] for m in ok["method"] if m.startswith(PREFIX)} & set(ok["method"])):
        ours = ok[ok["method"] == name].set_index(keys)["score"]
        theirs = ok[ok["method"] == PREFIX + name].set_index(keys)["score"]
        pairs = pd.concat({"ours": 100 * ours, "theirs": 100 * theirs}, axis=1).dropna()
        difference = pairs["ours"] - pairs["theirs"]
        rows[name] = {
            "adapt": cell(pairs["ours"].mean(), ci95(pairs["ours"])),
            "pytorch-adapt": cell(pairs["theirs"].mean(), ci95(pairs["theirs"])),
            "difference (points)": cell(difference.mean(), ci95(difference)),
            "pairs": len(pairs),
            "failed": f"{failures.get(name, 0)} / {failures.get(PREFIX + name, 0)}",
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("method")


def write_backends(runs: pd.DataFrame, out: Path) -> tuple[pd.DataFrame, str] | None:
    """Write ``backends.csv`` and ``backends.md`` when some method ran in both implementations."""
    table = backend_comparison(runs)
    if table.empty:
        return None
    caption = ("This library's implementation beside pytorch-adapt's (pa:<method>: its hooks and defaults, trained "
               "by this library's engine on the same data, backbone, schedule and seeds): target accuracy (%), "
               "mean ± 95% CI over the task x seed pairs both finished, and the paired difference; failed: "
               "runs that failed or diverged, ours / pytorch-adapt's")  # fmt: skip
    table.to_csv(out / "backends.csv")
    (out / "backends.md").write_text(to_markdown(table, caption))
    return table, caption
