"""The headline tables: run records as frames, per-task summaries, the leaderboard and its text forms.

Everything here works from run records (or frames built from them) alone; Markdown and LaTeX
rendering and the comparison with published numbers live here too, since every other table
of the report goes through :func:`to_markdown`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...data.base import task_name as base_task_name
from ..identity import stale_reasons
from ..protocols import DEFAULT_PROTOCOL
from .common import cell, ci95, task_key


def task_name(config: dict[str, Any]) -> str:
    """The task a run configuration belongs to.

    Parameters
    ----------
    config : dict
        A run record's ``config``.

    Returns
    -------
    str
        'benchmark/source->target', with ' @<steps>' when the suite runs several training budgets.
    """
    budget = f" @{config['budget']}" if config.get("budget") is not None else ""
    return base_task_name(config["benchmark"], config["source"], config["target"]) + budget


def runs_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per run: configuration, status and scores.

    Parameters
    ----------
    records : list of dict
        Run records as read by :func:`adapt.bench.read_records`.

    Returns
    -------
    pandas.DataFrame
        Sorted by task, method and seed; ``score`` is the run's suite metric.
    """
    rows = []
    for r in records:
        c = r["config"]
        rows.append({
            "id": r["id"],
            "method": c.get("variant") or c["method"],  # a suite's label for a variant
            "task": task_name(c),
            "budget": c.get("budget"),
            "seed": c["seed"],
            "draw": c.get("draw", 0),
            "status": r["status"],
            "selection": r.get("selection", "last"),
            "protocol": r.get("protocol"),
            "metric": r.get("metric", "accuracy"),
            "score": r.get(r.get("metric", "accuracy")),
            "accuracy": r.get("accuracy"),
            "mean_class_accuracy": r.get("mean_class_accuracy"),
            "accuracy_heldout": r.get("accuracy_heldout"),
            "accuracy_transductive": r.get("accuracy_transductive"),
            "adaptation": c.get("adaptation", DEFAULT_PROTOCOL),
            "select_by": c.get("select_by"),
            "target_labels": c.get("target_labels"),
            # online protocol: the adapted model on the whole stream, after it
            "accuracy_after": r.get("accuracy_after"),
            # online protocol, compute charged: the method adapted on one batch in this many
            "relative_speed": r.get("relative_speed"),
            "error": r.get("error"),
            "failed_step": r.get("failed_step"),
            "device": r.get("device"),
            "wall_seconds": r.get("wall_seconds"),
            # made with other defaults or code than this library runs (kept with --keep-stale)
            "stale": bool(stale_reasons(r)),
        })  # fmt: skip
    columns = ["id", "method", "task", "seed", "status", "selection", "protocol", "accuracy"]
    frame = pd.DataFrame(rows, columns=columns + [k for k in (rows[0] if rows else {}) if k not in columns])
    return frame.sort_values(["task", "method", "seed"]).reset_index(drop=True)


def summarize(runs: pd.DataFrame, score: str = "score") -> pd.DataFrame:
    """Per task x method: mean, std and 95 % confidence half-width over seeds (in %), run counts.

    Parameters
    ----------
    runs : pandas.DataFrame
        Rows of :func:`runs_frame`.
    score : str
        The column to average: each run's suite metric (accuracy, or mean class accuracy for VisDA).

    Returns
    -------
    pandas.DataFrame
        Columns task, method, selection, metric, mean, std, n, ci95 and failed.
    """
    ok = runs[runs.status == "ok"]
    grouped = ok.groupby(["task", "method", "selection", "metric"])[score]
    summary = grouped.agg(mean="mean", std="std", n="count").reset_index()
    summary["ci95"] = grouped.apply(ci95).values
    for col in ("mean", "std", "ci95"):
        summary[col] = 100 * summary[col]
    failed = runs[runs.status != "ok"].groupby(["task", "method"]).size().rename("failed")
    summary = summary.merge(failed, on=["task", "method"], how="left").fillna({"failed": 0})
    summary["failed"] = summary["failed"].astype(int)
    return summary


def leaderboard(summary: pd.DataFrame) -> pd.DataFrame:
    """Methods x tasks of mean accuracy, plus the average over tasks and the average rank.

    Parameters
    ----------
    summary : pandas.DataFrame
        The output of :func:`summarize`.

    Returns
    -------
    pandas.DataFrame
        One row per method, best average first; columns are the tasks in order, 'avg' and 'avg rank'.
    """
    table = summary.pivot(index="method", columns="task", values="mean")
    table = table[sorted(table.columns, key=task_key)]
    table["avg"] = table.mean(axis=1)
    ranks = table.drop(columns="avg").rank(ascending=False, method="average")
    table["avg rank"] = ranks.mean(axis=1)
    return table.sort_values("avg", ascending=False)


def formatted_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard as strings: 'mean ± ci95' per task, the average and the rank.

    Parameters
    ----------
    summary : pandas.DataFrame
        The output of :func:`summarize`.

    Returns
    -------
    pandas.DataFrame
        Rows and columns as in :func:`leaderboard`, every cell a string.
    """
    table = leaderboard(summary)
    cells = summary.assign(cell=[cell(m, c) for m, c in zip(summary["mean"], summary["ci95"])])
    text = cells.pivot(index="method", columns="task", values="cell").reindex(index=table.index)
    text = text[[c for c in table.columns if c in text.columns]]
    text["avg"] = table["avg"].map(lambda v: f"{v:.1f}")
    text["avg rank"] = table["avg rank"].map(lambda v: f"{v:.2f}")
    return text


def to_markdown(table: pd.DataFrame, caption: str) -> str:
    """A Markdown table; a multi-level index (method, budget) becomes one column per level.

    Parameters
    ----------
    table : pandas.DataFrame
        The table; its index is written as the first column(s).
    caption : str
        A line written above the table.

    Returns
    -------
    str
        The caption, a blank line and the table, ending with a newline.
    """
    names = [n or "method" for n in table.index.names]
    header = [*names, *map(str, table.columns)]
    lines = [f"{caption}\n", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, row in table.iterrows():
        keys = key if isinstance(key, tuple) else (key,)
        lines.append("| " + " | ".join([*map(str, keys), *map(str, row.values)]) + " |")
    return "\n".join(lines) + "\n"


def to_latex(table: pd.DataFrame, caption: str) -> str:
    """A booktabs LaTeX table (underscores, '%', '->' and '±' escaped), indexed by method.

    Parameters
    ----------
    table : pandas.DataFrame
        The table; its index is written as the 'method' column.
    caption : str
        The table's caption.

    Returns
    -------
    str
        A ``table`` environment, ending with a newline.
    """

    def esc(s: str) -> str:
        return str(s).replace("_", r"\_").replace("%", r"\%").replace("->", r"$\to$").replace("±", r"$\pm$")

    cols = "l" + "c" * len(table.columns)
    lines = [r"\begin{table}[t]", r"\centering", f"\\caption{{{esc(caption)}}}", f"\\begin{{tabular}}{{{cols}}}",
             r"\toprule", " & ".join(["method", *map(esc, table.columns)]) + r" \\", r"\midrule"]  # fmt: skip
    for method, row in table.iterrows():
        lines.append(" & ".join([esc(method), *map(esc, row.values)]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def compare_published(summary: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, str] | None:
    """Our mean accuracy beside the published one, per task (or the task average) and method.

    Parameters
    ----------
    summary : pandas.DataFrame
        The output of :func:`summarize`.
    path : pathlib.Path
        A JSON file ``{"source": ..., "<task or avg>": {"<method>": number}}``.

    Returns
    -------
    tuple of (pandas.DataFrame, str) or None
        The table indexed by (task, method) with ours, published and difference, and its caption;
        None when the file does not exist or there is nothing to compare.
    """
    if not path.exists() or summary.empty:
        return None
    published = json.loads(path.read_text())
    source = published.pop("source", "published results")
    ours = leaderboard(summary)
    rows = []
    for key, methods in published.items():
        for method, number in methods.items():
            value = ours.loc[method, key] if method in ours.index and key in ours.columns else np.nan
            rows.append({"task": key, "method": method, "ours": value, "published": number})
    table = pd.DataFrame(rows).set_index(["task", "method"]).round(1)
    table["difference"] = (table["ours"] - table["published"]).round(1)
    caption = (f"Ours (last checkpoint, no target labels) beside {source}; most published numbers select "
               "checkpoints with target labels, so expect ours to be lower")  # fmt: skip
    return table, caption
