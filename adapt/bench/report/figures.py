"""The report's figures (PNG), one function per figure; matplotlib and seaborn are imported only when drawing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ...methods import get
from .common import ci95, pyplot, save_figure, seaborn, streamed_once, task_label
from .selection import checkpoints_frame
from .tables import leaderboard
from .transfer import BASELINE, paired_gains

#: Said in every panel whose numbers come from target labels (scoring only; training never sees them).
TARGET_LABELS_NOTE = "scored with target labels"
#: Above this many methods, figures group them by family and switch to layouts that stay readable.
MANY_METHODS = 8
#: The order of the method families in grouped figures.
FAMILY_ORDER = (
    "baseline",
    "adversarial",
    "discrepancy",
    "classifier disagreement",
    "regularizer",
    "self-training",
    "normalization",
    "pytorch-adapt",  # another library's implementations (pa:<method>), grouped apart from ours
)

if TYPE_CHECKING:
    pass


def curves_frame(records: list[dict[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """Target accuracy (%) per checkpoint, for the learning-curve figure.

    Parameters
    ----------
    records : list of dict or pandas.DataFrame
        Run records, or their :func:`~adapt.bench.report.selection.checkpoints_frame`.

    Returns
    -------
    pandas.DataFrame
        :func:`~adapt.bench.report.selection.checkpoints_frame` with a 'target accuracy (%)' column.
    """
    checkpoints = records if isinstance(records, pd.DataFrame) else checkpoints_frame(records)
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
    sns = seaborn()
    sns.set_theme(style="whitegrid", context="notebook")
    table = leaderboard(summary)
    many = len(table) > MANY_METHODS
    order = grouped_order(table) if many else list(table.index)
    tasks = [c for c in table.columns if c not in ("avg", "avg rank")]
    palette = dict(zip(order, sns.color_palette("husl" if many else "deep", len(order))))
    scored = "online, one pass over the target stream" if streamed_once(runs) else "last checkpoint"
    paths = [heatmap_figure(table.reindex(order), tasks, out, scored), bars_figure(runs, order, palette, out)]
    if not curves.empty:
        paths.append(curves_figure(curves, tasks, order, palette, out))
    if BASELINE in table.index and len(order) > 1:
        paths.append(gain_figure(runs, tasks, palette, out))
    return paths


def method_family(name: str) -> str:
    """The registered family of a method (or of the first part of a composed name); 'other' if unknown."""
    try:
        family = get(name).family
    except ValueError:  # a method registered by a plugin that is not imported now
        return "other"
    return family if family in FAMILY_ORDER else "other"


def grouped_order(table: pd.DataFrame) -> list[str]:
    """Methods grouped by family (:data:`FAMILY_ORDER`), best average rank first within a family."""
    rank = {family: i for i, family in enumerate(FAMILY_ORDER)}
    return sorted(table.index, key=lambda m: (rank.get(method_family(m), len(rank)), table.loc[m, "avg rank"]))


def _family_bands(ax: Any, order: list[str], row_offset: float = 0.0, line_color: str = "white") -> None:
    """Lines between the families of ``order`` and their names on the left. Row r spans r..r+1 in data
    coordinates (a heatmap); ``row_offset=-0.5`` for bar charts, whose row r is centred on r."""
    families = [method_family(m) for m in order]
    start = 0
    for i in range(1, len(order) + 1):
        if i == len(order) or families[i] != families[start]:
            if i < len(order):
                ax.axhline(i + row_offset, color=line_color, linewidth=4 if line_color == "white" else 0.8)
            # a band of one row gets its name across, wider bands along it (long names on two lines)
            along = i - start > 1
            label = families[start].replace(" ", "\n") if along and len(families[start]) > 12 else families[start]
            ax.annotate(label, xy=(0, (start + i) / 2 + row_offset), xycoords=("axes fraction", "data"),
                        xytext=(-115, 0), textcoords="offset points", rotation=90 if along else 0,
                        ha="center" if along else "right", va="center", fontsize=8, color="#444444",
                        linespacing=1.0)  # fmt: skip
            start = i


def heatmap_figure(table: pd.DataFrame, tasks: list[str], out: Path, scored: str = "last checkpoint") -> Path:
    """``heatmap.png``: methods x tasks (+ average) of mean target accuracy, numbers in the cells.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`~adapt.bench.report.tables.leaderboard`.
    tasks : list of str
        Its task columns, in order.
    out : pathlib.Path
        The report folder.
    scored : str
        What each run's accuracy is, for the title (the last checkpoint, or the online accuracy).

    Returns
    -------
    pathlib.Path
        The file written.
    """
    plt = pyplot()
    sns = seaborn()
    heat = table[[*tasks, "avg"]]
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(heat.columns), 0.9 + 0.55 * len(heat)))
    sns.heatmap(heat, annot=True, fmt=".1f", cmap="viridis", cbar_kws={"label": "target accuracy (%)"}, ax=ax,
                linewidths=0.5, annot_kws={"fontsize": 10})  # fmt: skip
    crowded = len(heat.columns) > 10  # slanted labels, or neighbours run into each other
    ax.set_xticklabels([task_label(t) for t in heat.columns], rotation=35 if crowded else 0,
                       ha="right" if crowded else "center", fontsize=8)  # fmt: skip
    ax.set_xlabel("")
    ax.set_ylabel("")
    if len(heat) > MANY_METHODS:
        _family_bands(ax, list(heat.index))
    ax.set_title(f"Target accuracy (%), mean over seeds; {scored} ({TARGET_LABELS_NOTE})")
    return save_figure(fig, out / "heatmap.png")


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
    plt = pyplot()
    ok = runs[runs.status == "ok"].copy()
    ok["accuracy (%)"] = 100 * ok["score"]
    per_seed = ok.groupby(["method", "seed"])["accuracy (%)"].mean()
    means = per_seed.groupby("method").mean().reindex(order)
    cis = per_seed.groupby("method").apply(ci95).reindex(order).fillna(0.0)  # same t-interval as the tables
    if len(order) > MANY_METHODS:
        return _horizontal_bars(means, cis, palette, out)
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(order), 4))
    bars = ax.bar(order, means.values, color=[palette[m] for m in order], yerr=cis.values, capsize=4,
                  error_kw={"elinewidth": 1.2, "ecolor": "#333333"})  # fmt: skip
    ax.bar_label(bars, labels=[f"{m:.1f}" for m in means.values], label_type="center", color="white",
                 fontsize=11, fontweight="bold")  # fmt: skip
    ax.set_ylim(0, 105)
    ax.grid(axis="x", visible=False)  # no style grid line through the bars
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Average target accuracy over tasks, mean ± 95 % CI over seeds\n({TARGET_LABELS_NOTE})")
    ax.set_xlabel("")
    return save_figure(fig, out / "bars.png")


def _horizontal_bars(means: pd.Series, cis: pd.Series, palette: dict[str, Any], out: Path) -> Path:
    """``bars.png`` for many methods: one row per method, grouped by family, the value at the bar's end."""
    plt = pyplot()
    order = list(means.index)
    fig, ax = plt.subplots(figsize=(8, 1.0 + 0.36 * len(order)))
    rows = range(len(order))
    ax.barh(list(rows), means.values, xerr=cis.values, color=[palette[m] for m in order], capsize=3,
            error_kw={"elinewidth": 1, "ecolor": "#333333"}, height=0.7)  # fmt: skip
    for row, (mean, ci) in enumerate(zip(means.values, cis.values)):
        ax.text(mean + ci + 1, row, f"{mean:.1f}", va="center", fontsize=9)
    ax.set_yticks(list(rows))
    ax.set_yticklabels(order)
    ax.set_ylim(len(order) - 0.5, -0.5)  # first method on top, as in the heatmap
    ax.set_xlim(0, 108)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("accuracy (%)")
    _family_bands(ax, order, row_offset=-0.5, line_color="#999999")
    ax.set_title(f"Average target accuracy over tasks, mean ± 95 % CI over seeds\n({TARGET_LABELS_NOTE})")
    return save_figure(fig, out / "bars.png")


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
    sns = seaborn()
    cols = min(len(tasks), 3)
    grid = sns.relplot(data=curves, x="step", y="target accuracy (%)", hue="method", hue_order=order, col="task",
                       col_order=[t for t in tasks if t in set(curves["task"])], col_wrap=cols, kind="line",
                       errorbar=("ci", 95), seed=0, height=3.2, aspect=1.3, palette=palette,
                       facet_kws={"sharey": False})  # fmt: skip
    grid.set_titles("{col_name}\n(target labels: monitoring only)", size=9)
    grid.figure.suptitle(
        "Target accuracy during training, computed with target labels for monitoring only:\n"
        "never used for training, checkpoint selection or hyperparameters (mean and 95 % CI over seeds)",
        y=1.08,
    )
    return save_figure(grid.figure, out / "curves.png")


def gain_figure(runs: pd.DataFrame, tasks: list[str], palette: dict[str, Any], out: Path) -> Path:
    """``gain.png``: each method's gain over SourceOnly per task, mean ± 95 % t-interval over seeds.

    The gain of a run is its accuracy minus that of the SourceOnly run of the same task and seed.

    Parameters
    ----------
    runs : pandas.DataFrame
        The headline runs (with SourceOnly).
    tasks : list of str
        Tasks, in leaderboard order.
    palette : dict
        Method -> colour.
    out : pathlib.Path
        The report folder.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    plt = pyplot()
    gains = paired_gains(runs[runs.status == "ok"])
    stats = gains.groupby(["method", "task"])["gain"].agg(["mean", ci95]).fillna({"ci95": 0.0})
    methods = [m for m in palette if m in set(gains["method"])]
    if len(methods) > MANY_METHODS:
        return _gain_heatmap(gains, tasks, methods, out)
    width = 0.8 / max(1, len(methods))
    fig, ax = plt.subplots(figsize=(2 + 1.6 * len(tasks), 4))
    for i, method in enumerate(methods):
        rows = stats.loc[method].reindex(tasks)
        positions = [j - 0.4 + width * (i + 0.5) for j in range(len(tasks))]
        ax.bar(positions, rows["mean"], width, yerr=rows["ci95"], color=palette[method], label=method, capsize=3,
               error_kw={"elinewidth": 1, "ecolor": "#333333"})  # fmt: skip
    ax.axhline(0, color="black", linewidth=1)
    ax.grid(axis="x", visible=False)
    ax.set_xticks(range(len(tasks)))
    ax.set_xticklabels([task_label(t) for t in tasks], fontsize=8)
    ax.set_ylabel("gain over SourceOnly (points)")
    ax.set_title(f"Gain over SourceOnly, same task and seed: mean ± 95 % CI over seeds ({TARGET_LABELS_NOTE})")
    ax.legend(bbox_to_anchor=(1.01, 1), loc="upper left", frameon=False)
    return save_figure(fig, out / "gain.png")


def _gain_heatmap(gains: pd.DataFrame, tasks: list[str], methods: list[str], out: Path) -> Path:
    """``gain.png`` for many methods: methods x tasks (+ average) of the mean gain over SourceOnly."""
    plt = pyplot()
    sns = seaborn()
    table = gains.pivot_table(index="method", columns="task", values="gain", aggfunc="mean").reindex(methods)
    table = table[[t for t in tasks if t in table.columns]]
    table["avg"] = table.mean(axis=1)
    limit = max(1.0, float(table.abs().max().max()))
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(table.columns), 0.9 + 0.45 * len(table)))
    sns.heatmap(table, annot=table.map(lambda v: f"{v:+.1f}"), fmt="", cmap="RdBu", vmin=-limit, vmax=limit,
                center=0, linewidths=0.5, ax=ax, cbar_kws={"label": "gain over SourceOnly (points)"})  # fmt: skip
    ax.set_xticklabels([task_label(t) for t in table.columns], rotation=0, fontsize=8)
    ax.set_xlabel("")
    ax.set_ylabel("")
    _family_bands(ax, methods)
    ax.set_title(f"Gain over SourceOnly, same task and seed, mean over seeds; blue: better ({TARGET_LABELS_NOTE})")
    return save_figure(fig, out / "gain.png")


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
    plt = pyplot()
    sns = seaborn()
    fig, ax = plt.subplots(figsize=(1.8 + 1.5 * len(quality.columns), 1.4 + 0.5 * len(quality)))
    labels = quality.map(lambda v: "n/a" if pd.isna(v) else f"{v:.2f}")
    sns.heatmap(quality, annot=labels, fmt="", cmap="RdBu_r", vmin=-1, vmax=1, center=0, ax=ax,
                linewidths=0.5, cbar_kws={"label": "weighted Spearman (-1 to 1)"})  # fmt: skip
    ax.grid(False)  # no style grid lines through the (masked) n/a cells
    ax.set_facecolor("#e6e6e6")
    for (row, col), text in _na_cells(quality):
        ax.text(col + 0.5, row + 0.5, text, ha="center", va="center", color="#555555", fontsize=9)
    ax.set_xticklabels([task_label(t.get_text()) for t in ax.get_xticklabels()], rotation=0, fontsize=8)
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_title(
        f"How well each validator ranks checkpoints by target accuracy ({TARGET_LABELS_NOTE})\n"
        "1: same order as target accuracy; 0: unrelated; below 0: prefers the worse checkpoints;\n"
        "n/a: undefined (the score or the accuracy did not vary over the checkpoints)",
        fontsize=10,
    )
    return save_figure(fig, out / "validators.png")


def _na_cells(table: pd.DataFrame) -> list[tuple[tuple[int, int], str]]:
    """(row, column) positions of the missing values, labelled 'n/a' (seaborn leaves them blank)."""
    values = table.isna().to_numpy()
    return [((i, j), "n/a") for i in range(values.shape[0]) for j in range(values.shape[1]) if values[i, j]]
