"""The method table: each method that ran, with its paper, its adaptation term, its gain over
SourceOnly and its negative transfer rate (a method that never beats SourceOnly says so)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...methods import get
from ...methods.registry import split_composed
from .common import cell, interval
from .figures import FAMILY_ORDER, method_family
from .tables import to_markdown
from .transfer import BASELINE, TRANSFER_CAPTION, paired_gains, transfer_summary


def describe_method(name: str) -> tuple[str, str]:
    """(paper, adaptation term) of a registered method; a composed name joins its parts with ' + '."""
    try:
        base, extras = split_composed(name)
    except ValueError:  # a plugin's method that is not imported now
        return "", ""
    parts = [get(part) for part in (base, *extras)]
    return " + ".join(p.paper for p in parts), " + ".join(p.adaptation_term for p in parts)


def method_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per adaptation method of the headline runs: family, paper, adaptation term, gain over
    SourceOnly (mean ± 95 % CI over finished task x seed pairs, and the interval over shifts), negative
    transfer rate (failed runs counted), failed runs, and the tasks on which it is above SourceOnly on
    average. Grouped by family, best gain first within a family."""
    gains = paired_gains(runs)
    summary = transfer_summary(gains)
    if "budget" in summary.index.names:  # one row per method: the table is about methods, not budgets
        summary = transfer_summary(gains.drop(columns="budget"))
    above = gains.groupby(["method", "task"])["gain"].mean().gt(0).groupby("method").sum()
    rows = []
    for method, row in summary.iterrows():
        paper, term = describe_method(method)
        tasks = int(above.get(method, 0))
        rows.append({
            "method": method,
            "family": method_family(method),
            "paper": paper,
            "adaptation term": term,
            "gain over SourceOnly (points)": cell(row["gain"], row["ci95"]),
            "95% interval over shifts": interval(row["shift_low"], row["shift_high"]),
            "negative transfer": f"{100 * row['negative_transfer']:.0f}%",
            "failed": int(row["failed"]),
            "tasks above SourceOnly": f"{tasks} of {gains[gains.method == method]['task'].nunique()}"
            + ("" if tasks else " (never better)"),
            "_gain": row["gain"],
        })  # fmt: skip
    table = pd.DataFrame(rows)
    rank = {family: i for i, family in enumerate(FAMILY_ORDER)}
    table = table.assign(_family=table["family"].map(lambda f: rank.get(f, len(rank))))
    return table.sort_values(["_family", "_gain"], ascending=[True, False]).drop(columns=["_family", "_gain"])


def write_method_table(runs: pd.DataFrame, out: Path) -> tuple[pd.DataFrame, str] | None:
    """Write ``methods.csv`` and ``methods.md`` when SourceOnly and another method ran."""
    ok = runs[runs.status == "ok"]
    if BASELINE not in set(ok["method"]) or ok["method"].nunique() < 2:
        return None
    table = method_table(runs)
    table.to_csv(out / "methods.csv", index=False)
    caption = (f"Methods: {TRANSFER_CAPTION[0].lower()}{TRANSFER_CAPTION[1:]}; tasks where the method is above "
               "SourceOnly on average; last checkpoint")  # fmt: skip
    (out / "methods.md").write_text(to_markdown(table.set_index("method"), caption))
    return table, caption
