"""Gains over SourceOnly and negative transfer: each adaptation run paired with the SourceOnly run
of the same task and seed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .tables import _cell, _ci95, to_markdown

BASELINE = "source_only"
#: A method transfers negatively on a (task, seed) pair when it is this many points below SourceOnly.
NEGATIVE_TRANSFER_POINTS = 2.0


def paired_gains(results: pd.DataFrame, value: str = "score") -> pd.DataFrame:
    """Each adaptation run's gain (points) over the SourceOnly run of the same task, budget and seed.

    Parameters
    ----------
    results : pandas.DataFrame
        Columns method, task, seed, ``value`` (a fraction) and optionally budget and rule; runs are
        paired within a rule, so a selection rule is compared with SourceOnly under the same rule.
    value : str
        The column compared.

    Returns
    -------
    pandas.DataFrame
        The adaptation rows that have a SourceOnly partner, with columns ``baseline`` and ``gain``.
    """
    keys = ["task", "seed"] + [k for k in ("budget", "rule") if k in results.columns and results[k].notna().any()]
    base = results[results["method"] == BASELINE].set_index(keys)[value].rename("baseline")
    others = results[results["method"] != BASELINE].join(base, on=keys, how="inner")
    return others.assign(gain=100 * (others[value] - others["baseline"]))


def transfer_summary(gains: pd.DataFrame) -> pd.DataFrame:
    """Per method (and budget): the mean gain over SourceOnly and the negative transfer rate.

    Parameters
    ----------
    gains : pandas.DataFrame
        The output of :func:`paired_gains`.

    Returns
    -------
    pandas.DataFrame
        Columns gain (mean, points) with ci95 (95 % t-interval over the (task, seed) pairs),
        negative_transfer (the share of pairs more than 2 points below SourceOnly), pairs and
        tasks_below (tasks whose mean gain is negative).
    """
    by = ["method"] + (["budget"] if "budget" in gains.columns and gains["budget"].notna().any() else [])
    grouped = gains.groupby(by)["gain"]
    table = grouped.agg(gain="mean", pairs="count").assign(
        ci95=grouped.apply(_ci95),
        negative_transfer=grouped.apply(lambda g: float((g < -NEGATIVE_TRANSFER_POINTS).mean())),
        tasks_below=gains.groupby(by)[["task", "gain"]].apply(
            lambda g: int((g.groupby("task")["gain"].mean() < 0).sum())
        ),
    )
    return table[["gain", "ci95", "negative_transfer", "pairs", "tasks_below"]]


def format_transfer(table: pd.DataFrame) -> pd.DataFrame:
    """``transfer_summary`` as strings: 'gain ± ci' and the negative transfer rate in %.

    Parameters
    ----------
    table : pandas.DataFrame
        The output of :func:`transfer_summary`.

    Returns
    -------
    pandas.DataFrame
        Same index, columns for display.
    """
    return pd.DataFrame(
        {
            "gain over SourceOnly (points)": [_cell(g, c) for g, c in zip(table["gain"], table["ci95"])],
            "negative transfer": [f"{100 * v:.0f}%" for v in table["negative_transfer"]],
            "pairs": table["pairs"],
            "tasks below SourceOnly": table["tasks_below"],
        },
        index=table.index,
    )


def write_transfer(runs: pd.DataFrame, out: Path) -> tuple[pd.DataFrame, str] | None:
    """Write ``transfer.csv`` and ``transfer.md`` when the sweep ran SourceOnly and another method.

    Parameters
    ----------
    runs : pandas.DataFrame
        Rows of :func:`~adapt.bench.report.tables.runs_frame` (the headline runs).
    out : pathlib.Path
        The report folder.

    Returns
    -------
    tuple of (pandas.DataFrame, str) or None
        The formatted table and its caption, or None when there is no SourceOnly to compare with.
    """
    ok = runs[runs.status == "ok"]
    if BASELINE not in set(ok["method"]) or ok["method"].nunique() < 2:
        return None
    table = transfer_summary(paired_gains(ok))
    text = format_transfer(table)
    online = "adaptation" in ok and set(ok["adaptation"]) == {"online"}
    caption = (
        "Gain over SourceOnly (points, mean ± 95% CI over task x seed pairs) and negative transfer rate "
        f"(share of pairs more than {NEGATIVE_TRANSFER_POINTS:g} points below SourceOnly); "
        + ("online accuracy over one pass of the target stream" if online else "last checkpoint")
    )
    percent = table.assign(negative_transfer=100 * table["negative_transfer"])  # % like every report file
    percent.rename(columns={"negative_transfer": "negative_transfer_pct"}).reset_index().to_csv(
        out / "transfer.csv", index=False
    )
    (out / "transfer.md").write_text(to_markdown(text, caption))
    return text, caption
