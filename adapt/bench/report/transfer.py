"""Gains over SourceOnly and negative transfer: each adaptation run paired with the SourceOnly run
of the same task and seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .common import cell, ci95, interval, streamed_once
from .tables import to_markdown

BASELINE = "source_only"
#: A method transfers negatively on a (task, seed) pair when it is this many points below SourceOnly.
NEGATIVE_TRANSFER_POINTS = 2.0
TRANSFER_CAPTION = (
    "Gain over SourceOnly (points): mean over the finished task x seed pairs ± the 95% t-interval over those "
    "pairs, and the 95% interval over shifts (a bootstrap that resamples the tasks); negative transfer: the "
    f"share of all pairs more than {NEGATIVE_TRANSFER_POINTS:g} points below SourceOnly, failed or diverged "
    "runs counted as negative transfer and in their own column"
)


def paired_gains(results: pd.DataFrame, value: str = "score") -> pd.DataFrame:
    """Each adaptation run's gain (points) over the SourceOnly run of the same task, budget and seed.

    Parameters
    ----------
    results : pandas.DataFrame
        Columns method, task, seed, ``value`` (a fraction) and optionally budget, rule and status; runs
        are paired within a rule, so a selection rule is compared with SourceOnly under the same rule.
        Failed adaptation runs (``status`` other than 'ok') stay, with a NaN gain and ``failed`` True:
        a run that diverged is a transfer that did not work, not a pair to leave out. A pair whose
        SourceOnly run failed has nothing to compare with and is left out.
    value : str
        The column compared.

    Returns
    -------
    pandas.DataFrame
        The adaptation rows that have a finished SourceOnly partner, with columns ``baseline``, ``gain``
        and ``failed``.
    """
    keys = ["task", "seed"] + [k for k in ("budget", "rule") if k in results.columns and results[k].notna().any()]
    finished = results["status"] == "ok" if "status" in results.columns else pd.Series(True, index=results.index)
    base = results[(results["method"] == BASELINE) & finished].set_index(keys)[value].rename("baseline")
    others = results[results["method"] != BASELINE].join(base, on=keys, how="inner")
    failed = (others["status"] != "ok") if "status" in others.columns else pd.Series(False, index=others.index)
    return others.assign(gain=(100 * (others[value] - others["baseline"])).where(~failed), failed=failed)


#: Resamples of the shifts behind :func:`shift_interval`.
BOOTSTRAP_RESAMPLES = 10_000


def shift_interval(gains: pd.DataFrame, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """95 % interval of the mean gain over *shifts*: a cluster bootstrap that resamples the tasks with
    replacement (each with all of its seeds) and takes the 2.5 and 97.5 percentiles of the mean gain.

    The t-interval over task x seed pairs (``ci95``) covers these seeds of these tasks; this one covers
    what another draw of shifts like these would give, which is what a claim about a method needs. With
    few tasks it is wide and rough (four tasks have only 35 distinct resamples); NaNs with fewer than two.
    """
    finished = gains.dropna(subset=["gain"])
    per_task = finished.groupby("task")["gain"].agg(["sum", "count"])
    if len(per_task) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(per_task), size=(resamples, len(per_task)))
    means = per_task["sum"].values[picks].sum(axis=1) / per_task["count"].values[picks].sum(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def transfer_summary(gains: pd.DataFrame) -> pd.DataFrame:
    """Per method (and budget): the mean gain over SourceOnly, its intervals and the negative transfer rate.

    Parameters
    ----------
    gains : pandas.DataFrame
        The output of :func:`paired_gains`.

    Returns
    -------
    pandas.DataFrame
        Columns gain (mean over the finished pairs, points), ci95 (95 % t-interval over the finished
        task x seed pairs), shift_low and shift_high (95 % interval over shifts, :func:`shift_interval`),
        negative_transfer (the share of *all* pairs more than 2 points below SourceOnly, failed runs
        counted as such), failed (failed runs), pairs (all) and tasks_below (tasks whose mean gain is
        negative).
    """
    gains = gains if "failed" in gains.columns else gains.assign(failed=False)
    by = ["method"] + (["budget"] if "budget" in gains.columns and gains["budget"].notna().any() else [])
    rows = []
    for key, group in gains.groupby(by):
        finished = group["gain"].dropna()
        low, high = shift_interval(group)
        below = (group["gain"] < -NEGATIVE_TRANSFER_POINTS) | group["failed"]
        rows.append({
            **dict(zip(by, key if isinstance(key, tuple) else (key,))),
            "gain": finished.mean(), "ci95": ci95(finished), "shift_low": low, "shift_high": high,
            "negative_transfer": float(below.mean()), "failed": int(group["failed"].sum()), "pairs": len(group),
            "tasks_below": int((group.groupby("task")["gain"].mean() < 0).sum()),
        })  # fmt: skip
    return pd.DataFrame(rows).set_index(by)


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
            "gain over SourceOnly (points)": [cell(g, c) for g, c in zip(table["gain"], table["ci95"])],
            "95% interval over shifts": [interval(lo, hi) for lo, hi in zip(table["shift_low"], table["shift_high"])],
            "negative transfer": [f"{100 * v:.0f}%" for v in table["negative_transfer"]],
            "failed": table["failed"],
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
    table = transfer_summary(paired_gains(runs))
    text = format_transfer(table)
    caption = TRANSFER_CAPTION + "; " + ("online accuracy over one pass of the target stream" if streamed_once(ok)
                                         else "last checkpoint")  # fmt: skip
    percent = table.assign(negative_transfer=100 * table["negative_transfer"])  # % like every report file
    percent.rename(columns={"negative_transfer": "negative_transfer_pct"}).reset_index().to_csv(
        out / "transfer.csv", index=False
    )
    (out / "transfer.md").write_text(to_markdown(text, caption))
    return text, caption
