"""Online accuracy along a stream of several domains (continual, gradual, mixed, long repeated streams).

An online run on a target of several domains records the online accuracy on each stretch of the
sequence as its curve (:func:`adapt.bench.protocols.online.domain_curve`); a target repeated ``k`` times
(``all-5x10``) is read in rounds, where a method that drifts shows as accuracy falling round after round.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .common import streamed_once
from .tables import to_markdown

STREAM_CAPTION = (
    "Online accuracy (%) on each round of the repeated stream (mean over the round's domains and over seeds; "
    "no reset between rounds); 'change' is the last round minus the first, in points"
)


def stream_points(runs: pd.DataFrame, checkpoints: pd.DataFrame) -> pd.DataFrame:
    """The per-domain online accuracies of runs scored online (their curves), with the round each stretch
    belongs to (1 unless the target's name ends in ``x<rounds>``) and accuracy in %."""
    if checkpoints.empty or not streamed_once(runs):
        return pd.DataFrame()
    points = checkpoints[checkpoints["id"].isin(runs.loc[runs["status"] == "ok", "id"])].copy()
    if points.empty:
        return points
    length = points.groupby("task")["step"].transform("max")
    rounds = points["task"].map(lambda task: int(m.group(1)) if (m := re.search(r"x(\d+)$", task)) else 1)
    points["round"] = (points["step"] - 1) // (length // rounds) + 1
    points["accuracy (%)"] = 100 * points["target_accuracy"]
    return points


def round_table(points: pd.DataFrame) -> pd.DataFrame:
    """Per repeated task and method (per method when one task repeats): the online accuracy of each round, and
    the last round minus the first."""
    repeated = points[points.groupby("task")["round"].transform("max") > 1]
    if repeated.empty:
        return pd.DataFrame()
    table = repeated.groupby(["task", "method", "round"])["accuracy (%)"].mean().unstack("round")
    table.columns = [f"round {r}" for r in table.columns]
    table["change"] = table.iloc[:, -1] - table.iloc[:, 0]
    table.columns.name = "round"
    if table.index.get_level_values("task").nunique() == 1:  # one repeated task: the methods name the rows
        table.index = table.index.droplevel("task")
    return table.sort_values("change")


def stream_figure(points: pd.DataFrame, path: Path) -> Path:
    """One panel per task: online accuracy along the stream (per round for a repeated target), one line per
    method, mean over seeds with a band over them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    repeated = points.groupby("task")["round"].transform("max") > 1
    per_round = (points[repeated].groupby(["task", "method", "seed", "round"], as_index=False)["accuracy (%)"].mean()
                 .rename(columns={"round": "position"}))  # fmt: skip
    shown = pd.concat([per_round, points[~repeated].rename(columns={"step": "position"})], ignore_index=True)
    tasks = sorted(shown["task"].unique())
    methods = sorted(shown["method"].unique())
    palette = dict(zip(methods, sns.color_palette("tab10", len(methods))))  # one colour per method in every panel
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        part = shown[shown["task"] == task]
        sns.lineplot(data=part, x="position", y="accuracy (%)", hue="method", hue_order=methods, palette=palette, ax=ax,
                     errorbar=("pi", 100), marker="o" if part["position"].max() <= 20 else None,
                     markersize=4)  # fmt: skip
        rounds = bool(repeated[points["task"] == task].any())
        ax.set_xlabel("round of the repeated stream" if rounds else "domain in the sequence")
        if rounds or part["position"].max() <= 20:
            ax.set_xticks(range(1, int(part["position"].max()) + 1))
        ax.set_title(task)
        ax.set_ylim(0, 100)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.suptitle("Online accuracy along the stream (no reset; the band spans the seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


COMPUTE_CAPTION = (
    "Compute charged (Alfarra et al., ICML 2024): each method's relative speed k, how many forward passes "
    "one of its steps takes on this machine (median over runs, and the range); it adapted on one batch in k "
    "and predicted the others with its latest model"
)


def compute_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per method of a compute-charged sweep: the median, least and largest relative speed, and the share of
    batches it adapted on (1/k at the median); empty when no run was charged."""
    if "relative_speed" not in runs or runs["relative_speed"].isna().all():
        return pd.DataFrame()
    speeds = runs.dropna(subset=["relative_speed"]).groupby("method")["relative_speed"]
    table = pd.DataFrame({"median k": speeds.median(), "least": speeds.min(), "largest": speeds.max()})
    table["batches adapted"] = (100 / table["median k"]).map(lambda v: f"{v:.0f}%")
    for column in ("median k", "least", "largest"):
        table[column] = table[column].map(lambda v: f"{v:g}")
    return table.sort_values("median k", key=lambda k: k.astype(float))


def write_stream_report(
    runs: pd.DataFrame, checkpoints: pd.DataFrame, out: Path, figures: bool
) -> dict[str, object] | None:
    """``stream.md/.csv`` (rounds of a repeated target) and ``stream.png`` when online runs streamed a target
    of several domains; ``compute.md`` when they were charged for compute. Returns the
    :class:`~adapt.bench.report.Report` fields, or None."""
    fields: dict[str, object] = {}
    compute = compute_table(runs)
    if not compute.empty:
        (out / "compute.md").write_text(to_markdown(compute, COMPUTE_CAPTION))
        fields["compute"], fields["compute_caption"] = compute, COMPUTE_CAPTION
    points = stream_points(runs, checkpoints)
    if points.empty:
        return fields or None
    table = round_table(points)
    if not table.empty:
        table.to_csv(out / "stream.csv")
        shown = table.map(lambda v: f"{v:.1f}").assign(change=table["change"].map(lambda v: f"{v:+.1f}"))
        (out / "stream.md").write_text(to_markdown(shown, STREAM_CAPTION))
        fields["stream"], fields["stream_caption"] = shown, STREAM_CAPTION
    if figures:
        fields["stream_figure"] = stream_figure(points, out / "stream.png")
    return fields
