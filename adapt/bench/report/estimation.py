"""Label-free accuracy estimates against the true target accuracy, and the guard against negative transfer.

Both read the last checkpoint of each run: the estimators (:mod:`adapt.validators.accuracy`) are
validators, so a suite that lists them scores them at every checkpoint. The guard pairs each adaptation
run with the SourceOnly run of the same task, budget and seed and keeps the SourceOnly model when the
adapted model's estimate is more than a margin below it (:func:`adapt.guard`, per run). Target labels
only score here; the guard decides from the estimates alone.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...estimate import GUARD_ESTIMATOR, GUARD_MARGIN
from ...validators.accuracy import accuracy_estimators
from .selection import RUN_ESTIMATES
from .tables import to_markdown
from .transfer import BASELINE, NEGATIVE_TRANSFER_POINTS, paired_gains, transfer_summary

ESTIMATION_CAPTION = (
    "Label-free accuracy estimates at each run's last checkpoint against its true target accuracy: mean absolute "
    "error in points per shift (pooled over methods, budgets and seeds), and 'mean' over all runs; lower is better"
)


def last_checkpoints(checkpoints: pd.DataFrame) -> pd.DataFrame:
    """Each run's last evaluated checkpoint (its final model)."""
    if checkpoints.empty:
        return checkpoints
    return checkpoints.loc[checkpoints.groupby("id")["step"].idxmax()].reset_index(drop=True)


def estimator_columns(checkpoints: pd.DataFrame) -> list[str]:
    """The checkpoint columns that are accuracy estimates: the estimators in registry order, then two seeds'
    agreement (:func:`~adapt.bench.report.selection.seed_agreement`) where the runs recorded predictions."""
    names = [name for name in accuracy_estimators() if name in checkpoints.columns]
    return names + [name for name in RUN_ESTIMATES if name in checkpoints.columns and checkpoints[name].notna().any()]


def estimation_errors(checkpoints: pd.DataFrame, by: str = "task") -> pd.DataFrame:
    """Estimators x ``by`` (task or method) of the mean absolute error (points) at the last checkpoints,
    plus a 'mean' column over all runs. Empty when no estimator was scored."""
    last = last_checkpoints(checkpoints)
    names = estimator_columns(last)
    if not names:
        return pd.DataFrame()
    errors = last[[by]].assign(**{n: 100 * (last[n] - last["target_accuracy"]).abs() for n in names})
    table = errors.groupby(by)[names].mean().T
    table["mean"] = errors[names].mean()
    return table.sort_values("mean")


def guarded_runs(checkpoints: pd.DataFrame, estimator: str = GUARD_ESTIMATOR,
                 margin: float = GUARD_MARGIN) -> pd.DataFrame:  # fmt: skip
    """The last checkpoints under two rules, 'last' and 'guard': the guard replaces an adaptation run's
    accuracy with its SourceOnly partner's when ``estimator`` puts the run more than ``margin`` below it.

    Returns rows (method, task, budget, seed, rule, score, status, switched) for :func:`paired_gains`.
    """
    last = last_checkpoints(checkpoints)
    if "draw" in last.columns:
        last = last[last["draw"] == 0]  # a hyperparameter search: the guard compares the first draws
    keys = ["task", "seed"] + (["budget"] if last["budget"].notna().any() else [])
    base = last[last["method"] == BASELINE].set_index(keys)[["target_accuracy", estimator]]
    base.columns = ["baseline_accuracy", "baseline_estimate"]
    runs = last.join(base, on=keys)
    switched = (runs["method"] != BASELINE) & (runs[estimator] < runs["baseline_estimate"] - margin)
    rows = runs[["method", *keys]].assign(status="ok", switched=False)
    guarded = rows.assign(rule="guard", score=runs["target_accuracy"].where(~switched, runs["baseline_accuracy"]),
                          switched=switched)  # fmt: skip
    return pd.concat([rows.assign(rule="last", score=runs["target_accuracy"]), guarded], ignore_index=True)


def guard_table(checkpoints: pd.DataFrame, estimator: str = GUARD_ESTIMATOR,
                margin: float = GUARD_MARGIN) -> pd.DataFrame:  # fmt: skip
    """Per method and budget: mean gain over SourceOnly and negative transfer rate without and with the
    guard, and how many runs the guard replaced by their SourceOnly partner."""
    runs = guarded_runs(checkpoints, estimator, margin)
    gains = paired_gains(runs.drop(columns="switched"))
    by = ["method", "budget"] if "budget" in runs.columns else ["method"]  # guarded_runs drops an empty one
    table = {}
    for rule in ("last", "guard"):
        summary = transfer_summary(gains[gains["rule"] == rule].drop(columns="rule"))
        table[f"gain ({rule})"] = summary["gain"]
        table[f"negative transfer ({rule})"] = summary["negative_transfer"]
    switched = runs[(runs["rule"] == "guard") & (runs["method"] != BASELINE)].groupby(by)["switched"]
    table["kept SourceOnly"] = switched.sum().astype(int).astype(str) + " / " + switched.size().astype(str)
    return pd.DataFrame(table)


def guard_caption(estimator: str = GUARD_ESTIMATOR, margin: float = GUARD_MARGIN) -> str:
    return (f"The guard against negative transfer (`adapt.guard`, per run): when '{estimator}' estimates the adapted "
            f"model more than {100 * margin:g} points below the SourceOnly model of the same task, budget and seed, "
            "the SourceOnly model is kept. Gain over SourceOnly (points) and negative transfer (share of pairs more "
            f"than {NEGATIVE_TRANSFER_POINTS:g} points below SourceOnly) at the last checkpoint without ('last') and "
            "with ('guard') it; no target label decides")  # fmt: skip


def format_guard(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`guard_table` for display: gains to 0.1, rates in %."""
    shown = table.copy()
    for column in table.columns:
        if column.startswith("gain"):
            shown[column] = table[column].map(lambda v: "n/a" if pd.isna(v) else f"{v:+.1f}")
        elif column.startswith("negative"):
            shown[column] = table[column].map(lambda v: f"{100 * v:.0f}%")
    return shown


def estimation_figure(checkpoints: pd.DataFrame, path: Path) -> Path:
    """Estimated against true target accuracy, one panel per estimator, one colour per shift."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    last = last_checkpoints(checkpoints)
    names = estimator_columns(last)
    long = last.melt(id_vars=["task", "method", "target_accuracy"], value_vars=names, var_name="estimator",
                     value_name="estimate")  # fmt: skip
    long["shift"] = long["task"].str.replace(r" @\d+$", "", regex=True)
    long[["target_accuracy", "estimate"]] *= 100
    grid = sns.relplot(data=long, x="target_accuracy", y="estimate", hue="shift", col="estimator", col_wrap=3,
                       height=3.2, s=18, alpha=0.7, facet_kws={"xlim": (0, 102), "ylim": (0, 102)})  # fmt: skip
    errors = estimation_errors(checkpoints)["mean"]
    for name, ax in grid.axes_dict.items():
        ax.plot([0, 100], [0, 100], color="grey", lw=0.8, ls="--")
        ax.set_title(f"{name}: MAE {errors[name]:.1f} points")
    grid.set_axis_labels("true target accuracy (%)", "estimated (%)")
    grid.figure.suptitle("Label-free accuracy estimates at the last checkpoint (the dashed line is exact)", y=1.02)
    grid.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(grid.figure)
    return path


def write_estimation_report(checkpoints: pd.DataFrame, out: Path, figures: bool) -> dict[str, object] | None:
    """``estimation.md/.csv``, ``guard.md/.csv`` and ``estimation.png`` when the runs scored estimators
    (and SourceOnly ran, for the guard). Returns the :class:`Report` fields, or None."""
    if checkpoints.empty or not estimator_columns(checkpoints):
        return None
    errors = estimation_errors(checkpoints)
    errors.to_csv(out / "estimation.csv")
    shown = errors.map(lambda v: f"{v:.1f}")
    (out / "estimation.md").write_text(to_markdown(shown, ESTIMATION_CAPTION))
    fields: dict[str, object] = {"estimation": shown, "estimation_caption": ESTIMATION_CAPTION}
    if (checkpoints["method"] == BASELINE).any() and GUARD_ESTIMATOR in checkpoints.columns:
        table = guard_table(checkpoints)
        table.to_csv(out / "guard.csv")
        fields["guard"], fields["guard_caption"] = format_guard(table), guard_caption()
        (out / "guard.md").write_text(to_markdown(fields["guard"], fields["guard_caption"]))
    if figures:
        fields["estimation_figure"] = estimation_figure(checkpoints, out / "estimation.png")
    return fields


def margin_sweep(checkpoints: pd.DataFrame, margins: list[float], estimators: list[str] | None = None) -> pd.DataFrame:
    """For each estimator and margin: the guard's mean gain and negative transfer rate over all adaptation
    runs (pooled over methods and budgets), without and with it (for choosing the defaults on a tuning suite)."""
    rows = []
    for estimator in estimators or estimator_columns(checkpoints):
        for margin in margins:
            runs = guarded_runs(checkpoints, estimator, margin)
            gains = paired_gains(runs.drop(columns="switched"))
            for rule, group in gains.groupby("rule"):
                # every method and budget as one: transfer_summary's rate over all pairs
                pooled = transfer_summary(group.drop(columns=["rule", "budget"]).assign(method="all")).iloc[0]
                rows.append({"estimator": estimator, "margin": margin, "rule": rule, "gain": pooled["gain"],
                             "negative_transfer": pooled["negative_transfer"], "pairs": int(pooled["pairs"]),
                             "kept_source_only": int(runs[runs["rule"] == rule]["switched"].sum())})  # fmt: skip
    return pd.DataFrame(rows)


__all__ = [
    "estimation_errors",
    "estimation_figure",
    "format_guard",
    "guard_caption",
    "guard_table",
    "guarded_runs",
    "last_checkpoints",
    "margin_sweep",
    "write_estimation_report",
]
