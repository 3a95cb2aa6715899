"""The figures of the transfer studies (``adapt-bench study``): accuracy against target labels, and
accuracy against training time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .common import ci95, pyplot, save_figure, seaborn

#: colorblind-palette positions: the baseline in grey, the transfer approaches in blue, green and purple
APPROACH_COLORS = {"target_only": 7, "finetune": 0, "dann+finetune": 2, "mme": 4}


def data_efficiency_figure(summary: pd.DataFrame, shots: Sequence[int | str], path: Path, *,
                           labels: Mapping[str, str], margin: float) -> Path:  # fmt: skip
    """One panel per task: target accuracy (mean, 95% CI band over seeds) against labeled target examples
    per class, one line per approach (named by ``labels``), and the goal line (TargetOnly with every
    label, minus ``margin`` points)."""
    plt, sns = pyplot(), seaborn()
    sns.set_theme(style="whitegrid", context="notebook")
    palette = sns.color_palette("colorblind")
    tasks = list(dict.fromkeys(summary["task"]))
    order = [str(s) for s in shots]
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.2 * len(tasks), 4.6), squeeze=False, sharey=False)
    for ax, spec in zip(axes[0], tasks):
        part = summary[summary.task == spec]
        for approach, curve in part.groupby("approach", sort=False):
            curve = curve.set_index("shots").reindex([s for s in order if s in set(curve["shots"])])
            x = np.array([order.index(s) for s in curve.index])
            color = palette[APPROACH_COLORS.get(approach, 4)]
            ax.plot(x, curve["mean"], marker="o", color=color, label=labels.get(approach, approach), lw=2)
            ax.fill_between(x, curve["mean"] - curve["ci95"].fillna(0), curve["mean"] + curve["ci95"].fillna(0),
                            color=color, alpha=0.18, lw=0)  # fmt: skip
        reference = part[(part.approach == "target_only") & (part.shots == "all")]["mean"]
        if not reference.empty:
            ax.axhline(float(reference.iloc[0]) - margin, color="0.35", ls="--", lw=1.2,
                       label=f"goal: TargetOnly with all labels − {margin:g} pts")  # fmt: skip
        _clip_to_percent(ax)
        ax.set_xticks(range(len(order)), order)
        ax.set_xlabel("labeled target examples per class")
        ax.set_ylabel("target test accuracy (%)")
        ax.set_title(spec.replace(":", " · ", 1).replace(":", " → "), fontsize=12)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, frameon=False, bbox_to_anchor=(0.5, -0.1))
    fig.suptitle("How many target labels does a source domain save?  (mean ± 95% CI over seeds; "
                 "scored on a held-out target split)", fontsize=12)  # fmt: skip
    fig.tight_layout()
    return save_figure(fig, path)


def training_time_figure(curves: pd.DataFrame, table: pd.DataFrame, path: Path) -> Path:
    """Rows: tasks; columns: accuracy against training seconds and against steps, from scratch and from
    the source model (mean and 95% CI band over seeds), with each task's goal line."""
    plt, sns = pyplot(), seaborn()
    sns.set_theme(style="whitegrid", context="notebook")
    palette = sns.color_palette("colorblind")
    colors = {"scratch": palette[7], "source": palette[0]}
    names = {"scratch": "from scratch (TargetOnly)", "source": "from the source model (FineTune)"}
    tasks = list(dict.fromkeys(curves["task"]))
    fig, axes = plt.subplots(len(tasks), 2, figsize=(11.5, 3.9 * len(tasks)), squeeze=False)
    for row, spec in zip(axes, tasks):
        part = curves[curves.task == spec]
        goal = table[(table.task == spec)]["goal (%)"].iloc[0]
        for ax, x in zip(row, ("seconds", "step")):
            for start, curve in part.groupby("start", sort=False):
                mean = curve.groupby("step")[["accuracy", "seconds"]].mean()
                spread = curve.groupby("step")["accuracy"].agg(_ci)
                xs = mean["seconds"] if x == "seconds" else mean.index
                ax.plot(xs, mean["accuracy"], color=colors[start], lw=2, label=names[start])
                ax.fill_between(xs, mean["accuracy"] - spread, mean["accuracy"] + spread, color=colors[start],
                                alpha=0.18, lw=0)  # fmt: skip
            ax.axhline(goal, color="0.35", ls="--", lw=1.2, label="goal: scratch's final accuracy − 2 pts")
            _clip_to_percent(ax)
            ax.set_xscale("log")  # the first steps are where the two starts differ
            ticker = pyplot().matplotlib.ticker
            ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
            ax.xaxis.set_minor_formatter(ticker.NullFormatter())
            if x == "seconds":
                source_seconds = part[part.start == "source"]["source_seconds"].mean()
                ax.text(0.98, 0.04, f"the source model took {source_seconds:.1f} s to train (not on this axis)",
                        transform=ax.transAxes, ha="right", va="bottom", fontsize=9, color="0.3")  # fmt: skip
            ax.set_xlabel("training seconds (probes excluded; log scale)" if x == "seconds"
                          else "optimizer steps (log scale)")  # fmt: skip
            ax.set_ylabel("target test accuracy (%)")
            ax.set_title(f"{spec.replace(':', ' · ', 1).replace(':', ' → ')}", fontsize=11)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, frameon=False, bbox_to_anchor=(0.5, -0.04))
    fig.suptitle("Training time to a target accuracy: every target label, from scratch or from a source model "
                 "(mean ± 95% CI over seeds)", fontsize=12)  # fmt: skip
    fig.tight_layout()
    return save_figure(fig, path)


def _clip_to_percent(ax: Any) -> None:
    """Accuracies lie in [0, 100]: a wide CI band (few seeds) must not stretch the axis beyond."""
    low, high = ax.get_ylim()
    ax.set_ylim(max(0.0, low), min(100.0, high))


def _ci(values: pd.Series) -> Any:
    half = ci95(values)
    return 0.0 if half != half else half  # one seed: no band
