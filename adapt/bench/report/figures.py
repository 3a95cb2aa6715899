"""The report's figures (PNG), one function per figure; matplotlib and seaborn are imported only when drawing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..._optional import require
from .selection import checkpoints_frame
from .tables import _ci95, _task_label, leaderboard

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _seaborn() -> Any:
    return require("seaborn", "bench", "the report's figures")


def _pyplot() -> Any:
    return require("matplotlib.pyplot", "bench", "the report's figures")


def curves_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Target accuracy (%) per checkpoint, for the learning-curve figure.

    Parameters
    ----------
    records : list of dict
        Run records.

    Returns
    -------
    pandas.DataFrame
        :func:`~adapt.bench.report.selection.checkpoints_frame` with a 'target accuracy (%)' column.
    """
    checkpoints = checkpoints_frame(records)
    if checkpoints.empty:
        return checkpoints
    return checkpoints.assign(**{"target accuracy (%)": 100 * checkpoints["target_accuracy"]})


def make_figures(runs: pd.DataFrame, summary: pd.DataFrame, curves: pd.DataFrame, out: Path) -> list[Path]:
    """Draw the headline figures into ``out``.

    The heatmap and the bars always; the learning curves when there are checkpoints; the gain over
    SourceOnly when SourceOnly and another method ran. One colour per method in every figure.

    Parameters
    ----------
    runs : pandas.DataFrame
        The headline runs (:func:`~adapt.bench.report.tables.runs_frame` rows).
    summary : pandas.DataFrame
        Their :func:`~adapt.bench.report.tables.summarize`.
    curves : pandas.DataFrame
        :func:`curves_frame` of the same runs (may be empty).
    out : pathlib.Path
        The report folder.

    Returns
    -------
    list of pathlib.Path
        The PNG files written.
    """
    sns = _seaborn()
    sns.set_theme(style="whitegrid", context="notebook")
    table = leaderboard(summary)
    order = list(table.index)
    tasks = [c for c in table.columns if c not in ("avg", "avg rank")]
    palette = dict(zip(order, sns.color_palette("deep", len(order))))
    paths = [heatmap_figure(table, tasks, out), bars_figure(runs, order, palette, out)]
    if not curves.empty:
        paths.append(curves_figure(curves, tasks, order, palette, out))
    if "source_only" in table.index and len(order) > 1:
        paths.append(gain_figure(table, tasks, palette, out))
    return paths


def heatmap_figure(table: pd.DataFrame, tasks: list[str], out: Path) -> Path:
    """``heatmap.png``: methods x tasks (+ average) of mean target accuracy, numbers in the cells.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`~adapt.bench.report.tables.leaderboard`.
    tasks : list of str
        Its task columns, in order.
    out : pathlib.Path
        The report folder.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    plt = _pyplot()
    sns = _seaborn()
    heat = table[[*tasks, "avg"]]
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(heat.columns), 0.9 + 0.55 * len(heat)))
    sns.heatmap(heat, annot=True, fmt=".1f", cmap="viridis", cbar_kws={"label": "target accuracy (%)"}, ax=ax,
                linewidths=0.5, annot_kws={"fontsize": 10})  # fmt: skip
    ax.set_xticklabels([_task_label(t) for t in heat.columns], rotation=0, fontsize=8)
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_title("Target accuracy (%), mean over seeds; selection: last checkpoint")
    return _save(fig, out / "heatmap.png")


def bars_figure(runs: pd.DataFrame, order: list[str], palette: dict[str, Any], out: Path) -> Path:
    """``bars.png``: per method, each seed's accuracy averaged over tasks, with a 95 % CI over seeds.

    Parameters
    ----------
    runs : pandas.DataFrame
        The headline runs.
    order : list of str
        Methods, in leaderboard order.
    palette : dict
        Method -> colour.
    out : pathlib.Path
        The report folder.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    plt = _pyplot()
    ok = runs[runs.status == "ok"].copy()
    ok["accuracy (%)"] = 100 * ok["score"]
    per_seed = ok.groupby(["method", "seed"])["accuracy (%)"].mean()
    means = per_seed.groupby("method").mean().reindex(order)
    cis = per_seed.groupby("method").apply(_ci95).reindex(order).fillna(0.0)  # same t-interval as the tables
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(order), 4))
    bars = ax.bar(order, means.values, color=[palette[m] for m in order], yerr=cis.values, capsize=4,
                  error_kw={"elinewidth": 1.2, "ecolor": "#333333"})  # fmt: skip
    ax.bar_label(bars, labels=[f"{m:.1f}" for m in means.values], label_type="center", color="white",
                 fontsize=11, fontweight="bold")  # fmt: skip
    ax.set_ylim(0, 105)
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Average target accuracy over tasks (mean ± 95 % CI over seeds)")
    ax.set_xlabel("")
    return _save(fig, out / "bars.png")


def curves_figure(curves: pd.DataFrame, tasks: list[str], order: list[str], palette: dict[str, Any], out: Path) -> Path:
    """``curves.png``: target accuracy against training step, one panel per task (monitoring only).

    Parameters
    ----------
    curves : pandas.DataFrame
        :func:`curves_frame` (not empty).
    tasks : list of str
        Tasks, in leaderboard order.
    order : list of str
        Methods, in leaderboard order.
    palette : dict
        Method -> colour.
    out : pathlib.Path
        The report folder.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    sns = _seaborn()
    cols = min(len(tasks), 3)
    grid = sns.relplot(data=curves, x="step", y="target accuracy (%)", hue="method", hue_order=order, col="task",
                       col_order=[t for t in tasks if t in set(curves["task"])], col_wrap=cols, kind="line",
                       errorbar=("ci", 95), seed=0, height=3.2, aspect=1.3, palette=palette,
                       facet_kws={"sharey": False})  # fmt: skip
    grid.set_titles("{col_name}")
    grid.figure.suptitle("Target accuracy during training (monitoring only)", y=1.03)
    return _save(grid.figure, out / "curves.png")


def gain_figure(table: pd.DataFrame, tasks: list[str], palette: dict[str, Any], out: Path) -> Path:
    """``gain.png``: each method's gain over SourceOnly per task (points, mean over seeds).

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`~adapt.bench.report.tables.leaderboard`, with a 'source_only' row.
    tasks : list of str
        Its task columns, in order.
    palette : dict
        Method -> colour.
    out : pathlib.Path
        The report folder.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    plt = _pyplot()
    sns = _seaborn()
    methods = [m for m in table.index if m != "source_only"]
    gains = (table.loc[methods, tasks] - table.loc["source_only", tasks]).reset_index()
    gains = gains.melt(id_vars="method", var_name="task", value_name="gain (points)")
    fig, ax = plt.subplots(figsize=(2 + 1.6 * len(tasks), 4))
    sns.barplot(
        data=gains, x="task", y="gain (points)", hue="method", hue_order=methods, palette=palette, ax=ax, seed=0
    )
    ax.axhline(0, color="black", linewidth=1)
    ax.set_xticks(range(len(tasks)))
    ax.set_xticklabels([_task_label(t) for t in tasks], fontsize=8)
    ax.set_xlabel("")
    ax.set_title("Gain over SourceOnly (accuracy points, mean over seeds)")
    ax.legend(bbox_to_anchor=(1.01, 1), loc="upper left", frameon=False)
    return _save(fig, out / "gain.png")


def validators_figure(quality: pd.DataFrame, out: Path) -> Path:
    """``validators.png``: validators x tasks of weighted Spearman with target accuracy.

    Parameters
    ----------
    quality : pandas.DataFrame
        :attr:`~adapt.bench.report.selection.SelectionReport.quality`.
    out : pathlib.Path
        The report folder.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    plt = _pyplot()
    sns = _seaborn()
    fig, ax = plt.subplots(figsize=(1.8 + 1.5 * len(quality.columns), 0.9 + 0.5 * len(quality)))
    sns.heatmap(quality, annot=True, fmt=".2f", cmap="RdBu_r", vmin=-1, vmax=1, center=0, ax=ax,
                linewidths=0.5, cbar_kws={"label": "weighted Spearman"})  # fmt: skip
    ax.set_xticklabels([_task_label(t.get_text()) for t in ax.get_xticklabels()], rotation=0, fontsize=8)
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_title("How well each validator ranks checkpoints (1 = perfectly, 0 = no better than chance)")
    return _save(fig, out / "validators.png")


def _save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a 120 dpi PNG and close it."""
    plt = _pyplot()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
