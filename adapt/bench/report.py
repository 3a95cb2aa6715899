"""Tables and figures from the run records alone (no model is loaded, nothing is retrained)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .runner import read_records


def task_name(config: dict[str, Any]) -> str:
    """'benchmark/source->target', with ' @<steps>' when the suite runs several training budgets."""
    budget = f" @{config['budget']}" if config.get("budget") is not None else ""
    return f"{config['benchmark']}/{config['source']}->{config['target']}{budget}"


def runs_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per run: configuration, status and scores."""
    rows = []
    for r in records:
        c = r["config"]
        rows.append({
            "id": r["id"],
            "method": c["method"],
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
            "error": r.get("error"),
            "failed_step": r.get("failed_step"),
            "device": r.get("device"),
            "wall_seconds": r.get("wall_seconds"),
        })  # fmt: skip
    columns = ["id", "method", "task", "seed", "status", "selection", "protocol", "accuracy"]
    frame = pd.DataFrame(rows, columns=columns + [k for k in (rows[0] if rows else {}) if k not in columns])
    return frame.sort_values(["task", "method", "seed"]).reset_index(drop=True)


def _ci95(values: pd.Series) -> float:
    n = values.count()
    if n < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / np.sqrt(n))


def summarize(runs: pd.DataFrame, score: str = "score") -> pd.DataFrame:
    """Per task x method: mean, std and 95 % confidence half-width over seeds (in %), run counts.

    ``score`` is each run's suite metric (accuracy, or mean class accuracy for VisDA).
    """
    ok = runs[runs.status == "ok"]
    grouped = ok.groupby(["task", "method", "selection", "metric"])[score]
    summary = grouped.agg(mean="mean", std="std", n="count").reset_index()
    summary["ci95"] = grouped.apply(_ci95).values
    for col in ("mean", "std", "ci95"):
        summary[col] = 100 * summary[col]
    failed = runs[runs.status != "ok"].groupby(["task", "method"]).size().rename("failed")
    summary = summary.merge(failed, on=["task", "method"], how="left").fillna({"failed": 0})
    summary["failed"] = summary["failed"].astype(int)
    return summary


def _task_key(name: str) -> tuple[str, int]:
    """Sort tasks by name, then by budget as a number ('x @500' before 'x @3000')."""
    base, _, budget = name.partition(" @")
    return base, int(budget) if budget.isdigit() else 0


def _task_label(name: str) -> str:
    """A task name on several short lines, for figure axes (long shift names break after the arrow)."""
    lines = name.replace(" @", "/@").split("/")
    lines = [line.replace("->", "->\n") if len(line) > 16 else line for line in lines]
    return "\n".join(lines)


def leaderboard(summary: pd.DataFrame) -> pd.DataFrame:
    """Methods x tasks of mean accuracy, plus the average over tasks and the average rank."""
    table = summary.pivot(index="method", columns="task", values="mean")
    table = table[sorted(table.columns, key=_task_key)]
    table["avg"] = table.mean(axis=1)
    ranks = table.drop(columns="avg").rank(ascending=False, method="average")
    table["avg rank"] = ranks.mean(axis=1)
    return table.sort_values("avg", ascending=False)


def _cell(mean: float, ci: float) -> str:
    if np.isnan(mean):
        return "-"
    return f"{mean:.1f} ± {ci:.1f}" if not np.isnan(ci) else f"{mean:.1f}"


def formatted_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard as strings: 'mean ± ci95' per task, the average and the rank."""
    table = leaderboard(summary)
    cells = summary.assign(cell=[_cell(m, c) for m, c in zip(summary["mean"], summary["ci95"])])
    text = cells.pivot(index="method", columns="task", values="cell").reindex(index=table.index)
    text = text[[c for c in table.columns if c in text.columns]]
    text["avg"] = table["avg"].map(lambda v: f"{v:.1f}")
    text["avg rank"] = table["avg rank"].map(lambda v: f"{v:.2f}")
    return text


def to_markdown(table: pd.DataFrame, caption: str) -> str:
    """A Markdown table; a multi-level index (method, budget) becomes one column per level."""
    names = [n or "method" for n in table.index.names]
    header = [*names, *map(str, table.columns)]
    lines = [f"{caption}\n", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, row in table.iterrows():
        keys = key if isinstance(key, tuple) else (key,)
        lines.append("| " + " | ".join([*map(str, keys), *map(str, row.values)]) + " |")
    return "\n".join(lines) + "\n"


def to_latex(table: pd.DataFrame, caption: str) -> str:
    def esc(s: str) -> str:
        return str(s).replace("_", r"\_").replace("%", r"\%").replace("->", r"$\to$").replace("±", r"$\pm$")

    cols = "l" + "c" * len(table.columns)
    lines = [r"\begin{table}[t]", r"\centering", f"\\caption{{{esc(caption)}}}", f"\\begin{{tabular}}{{{cols}}}",
             r"\toprule", " & ".join(["method", *map(esc, table.columns)]) + r" \\", r"\midrule"]  # fmt: skip
    for method, row in table.iterrows():
        lines.append(" & ".join([esc(method), *map(esc, row.values)]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _headline_runs(runs: pd.DataFrame, records: list[dict[str, Any]]) -> tuple[pd.DataFrame, str | None]:
    """The runs the headline table averages over seeds.

    With a hyperparameter search (several draws per task and method), averaging over draws would
    mix settings; the headline keeps, per task and method, the draw that the suite's ``select_by``
    validator prefers at the last checkpoint (never the one with the best target accuracy).
    """
    if runs.empty or runs.groupby(["task", "method"])["draw"].nunique().max() <= 1:
        return runs, None
    selection = selection_frame(records)
    picked_by = next((r["config"].get("select_by") for r in records if r["config"].get("select_by")), None)
    if selection.empty or picked_by is None:
        raise ValueError("a hyperparameter search needs validators and select_by to pick a draw without target labels")
    chosen = select_hyperparameters(selection)
    chosen = chosen[chosen["rule"] == "last"][["task", "method", "draw"]]
    return runs.merge(chosen, on=["task", "method", "draw"]), picked_by


def curves_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Target accuracy (%) per checkpoint, for the learning-curve figure."""
    checkpoints = checkpoints_frame(records)
    if checkpoints.empty:
        return checkpoints
    return checkpoints.assign(**{"target accuracy (%)": 100 * checkpoints["target_accuracy"]})


def make_figures(runs: pd.DataFrame, summary: pd.DataFrame, curves: pd.DataFrame, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    paths = []
    table = leaderboard(summary)
    order = list(table.index)
    tasks = [c for c in table.columns if c not in ("avg", "avg rank")]
    # one colour per method in every figure
    palette = dict(zip(order, sns.color_palette("deep", len(order))))

    # 1. heatmap: methods x tasks (+ average), numbers in the cells
    heat = table[[*tasks, "avg"]]
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(heat.columns), 0.9 + 0.55 * len(heat)))
    sns.heatmap(heat, annot=True, fmt=".1f", cmap="viridis", cbar_kws={"label": "target accuracy (%)"}, ax=ax,
                linewidths=0.5, annot_kws={"fontsize": 10})  # fmt: skip
    ax.set_xticklabels([_task_label(t) for t in heat.columns], rotation=0, fontsize=8)
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_title("Target accuracy (%), mean over seeds; selection: last checkpoint")
    paths.append(_save(fig, out / "heatmap.png"))

    # 2. per-method bars: each seed's accuracy averaged over tasks, with a 95 % CI over seeds
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
    paths.append(_save(fig, out / "bars.png"))

    # 3. target accuracy against training step (monitoring; never used for selection)
    if not curves.empty:
        cols = min(len(tasks), 3)
        grid = sns.relplot(data=curves, x="step", y="target accuracy (%)", hue="method", hue_order=order, col="task",
                           col_order=[t for t in tasks if t in set(curves["task"])], col_wrap=cols, kind="line",
                           errorbar=("ci", 95), height=3.2, aspect=1.3, palette=palette,
                           facet_kws={"sharey": False})  # fmt: skip
        grid.set_titles("{col_name}")
        grid.figure.suptitle("Target accuracy during training (monitoring only)", y=1.03)
        paths.append(_save(grid.figure, out / "curves.png"))

    # 4. gain over SourceOnly, per task
    if "source_only" in table.index and len(order) > 1:
        base = table.loc["source_only", tasks]
        gains = (table.loc[[m for m in order if m != "source_only"], tasks] - base).reset_index()
        gains = gains.melt(id_vars="method", var_name="task", value_name="gain (points)")
        fig, ax = plt.subplots(figsize=(2 + 1.6 * len(tasks), 4))
        methods = [m for m in order if m != "source_only"]
        sns.barplot(data=gains, x="task", y="gain (points)", hue="method", hue_order=methods, palette=palette, ax=ax)
        ax.axhline(0, color="black", linewidth=1)
        ax.set_xticks(range(len(tasks)))
        ax.set_xticklabels([_task_label(t) for t in tasks], fontsize=8)
        ax.set_xlabel("")
        ax.set_title("Gain over SourceOnly (accuracy points, mean over seeds)")
        ax.legend(bbox_to_anchor=(1.01, 1), loc="upper left", frameon=False)
        paths.append(_save(fig, out / "gain.png"))
    return paths


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def write_report(
    results: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, figures: bool = True
) -> dict[str, Any]:
    """Build every table and figure from ``<results>/runs/*.json`` into ``<results>/report``."""
    results = Path(results)
    if not (results / "runs").is_dir():
        raise FileNotFoundError(f"no run records under {results / 'runs'}; run 'adapt-bench run' first")
    records = read_records(results)
    if not records:
        raise FileNotFoundError(f"{results / 'runs'} holds no records")
    out = Path(out) if out else results / "report"
    out.mkdir(parents=True, exist_ok=True)
    runs = runs_frame(records)
    headline, picked_by = _headline_runs(runs, records)
    summary = summarize(headline)
    text = formatted_table(summary) if not summary.empty else pd.DataFrame()
    metric = "mean class accuracy" if (runs["metric"] == "mean_class_accuracy").all() else "accuracy"
    caption = f"Target {metric} (%), mean ± 95% CI over seeds; selection: last checkpoint (no target labels used)"
    if picked_by:
        caption += f"; hyperparameters picked by validator '{picked_by}'"
    runs.to_csv(out / "runs.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    (out / "summary.md").write_text(to_markdown(text, caption))
    (out / "summary.tex").write_text(to_latex(text, caption))
    failed = runs[runs.status != "ok"][["method", "task", "seed", "error", "failed_step"]]
    paths = []
    if figures and not summary.empty:
        curves = curves_frame(records)
        curves = curves[curves["id"].isin(headline["id"])] if not curves.empty else curves
        paths = make_figures(headline, summary, curves, out)
    transfer = _write_transfer(headline, out)
    selection = write_selection_report(records, out, figures)
    published = compare_published(summary, results / "published.json")
    if published is not None:
        selection["published"] = published
        (out / "published.md").write_text(to_markdown(published[0], published[1]))
    paths += selection.pop("figures", [])
    return {
        "runs": runs,
        "summary": summary,
        "table": text,
        "caption": caption,
        "failed": failed,
        "figures": paths,
        "out": out,
        **transfer,
        **selection,
    }


def _write_transfer(runs: pd.DataFrame, out: Path) -> dict[str, Any]:
    """The gain over SourceOnly and negative transfer table, when the sweep ran SourceOnly."""
    ok = runs[runs.status == "ok"]
    if BASELINE not in set(ok["method"]) or ok["method"].nunique() < 2:
        return {}
    table = transfer_summary(paired_gains(ok))
    text = format_transfer(table)
    caption = (
        "Gain over SourceOnly (points, mean ± 95% CI over task x seed pairs) and negative transfer rate "
        f"(share of pairs more than {NEGATIVE_TRANSFER_POINTS:g} points below SourceOnly); last checkpoint"
    )
    table.reset_index().to_csv(out / "transfer.csv", index=False)
    (out / "transfer.md").write_text(to_markdown(text, caption))
    return {"transfer": text, "transfer_caption": caption}


# ---------------------------------------------------------------- model selection (validators)
ORACLE = "oracle (uses target labels)"
#: Columns of :func:`checkpoints_frame` that are not validator scores.
CHECKPOINT_KEYS = ("id", "method", "task", "budget", "draw", "seed", "step", "target_accuracy")


def checkpoints_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per evaluated checkpoint: run identity, step, target accuracy and validator scores."""
    rows = []
    for r in records:
        if r["status"] != "ok":
            continue
        c = r["config"]
        for point in r.get("curve", []):
            if point.get("target_accuracy") is None:
                continue
            row = {"id": r["id"], "method": c["method"], "task": task_name(c), "budget": c.get("budget"),
                   "draw": c.get("draw", 0), "seed": c["seed"], "step": point["step"],
                   "target_accuracy": point["target_accuracy"]}  # fmt: skip
            row.update({k[4:]: v for k, v in point.items() if k.startswith("val_")})
            rows.append(row)
    return pd.DataFrame(rows)


def selection_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Per run and selection rule: the chosen checkpoint's step, target accuracy and rule score.

    Rules: 'last'; 'val: <name>' (the checkpoint with the best validator score); and the oracle
    (the checkpoint with the best target accuracy), which uses target labels and is an upper bound.
    """
    checkpoints = checkpoints_frame(records)
    if checkpoints.empty:
        return pd.DataFrame()
    by_id = {r["id"]: r for r in records}
    validators = [c for c in checkpoints.columns if c not in CHECKPOINT_KEYS]
    rows = []
    for run_id, group in checkpoints.groupby("id", sort=True):
        group = group.sort_values("step")
        base = group.iloc[0][["method", "task", "budget", "draw", "seed"]].to_dict()
        select_by = by_id[run_id]["config"].get("select_by")
        last = group.iloc[-1]
        rows.append({**base, "rule": "last", "step": last["step"], "accuracy": by_id[run_id]["accuracy"],
                     "score": last.get(select_by, np.nan) if select_by else np.nan})  # fmt: skip
        for v in validators:
            if group[v].notna().any():
                best = group.loc[group[v].idxmax()]
                rows.append({**base, "rule": f"val: {v}", "step": best["step"], "accuracy": best["target_accuracy"],
                             "score": best[v]})  # fmt: skip
        best = group.loc[group["target_accuracy"].idxmax()]
        rows.append({**base, "rule": ORACLE, "step": best["step"], "accuracy": best["target_accuracy"],
                     "score": best["target_accuracy"]})  # fmt: skip
    return pd.DataFrame(rows)


def select_hyperparameters(selection: pd.DataFrame) -> pd.DataFrame:
    """Per task, method and rule: the hyperparameter draw the rule picks, and its accuracy over seeds.

    A validator rule picks the draw with the best mean validator score (never target accuracy);
    the oracle picks by target accuracy; 'last' uses the suite's select_by score when there are
    several draws (else its single draw).
    """
    if selection.empty:
        return pd.DataFrame()
    per_draw = selection.groupby(["task", "method", "rule", "draw"]).agg(
        score=("score", "mean"), accuracy=("accuracy", "mean"), std=("accuracy", "std"), n=("accuracy", "count"),
        ci95=("accuracy", _ci95),
    ).reset_index()  # fmt: skip
    chosen = []
    for _, group in per_draw.groupby(["task", "method", "rule"], sort=True):
        pick = group.loc[group["score"].idxmax()] if group["score"].notna().any() else group.iloc[0]
        chosen.append(pick)
    out = pd.DataFrame(chosen).reset_index(drop=True)
    for col in ("accuracy", "std", "ci95"):
        out[col] = 100 * out[col]
    return out


def selection_table(chosen: pd.DataFrame) -> pd.DataFrame:
    """Methods x rules: target accuracy (%) averaged over tasks; the oracle column comes last."""
    table = chosen.pivot_table(index="method", columns="rule", values="accuracy", aggfunc="mean")
    rules = ["last", *sorted(c for c in table.columns if c.startswith("val: ")), ORACLE]
    return table[[r for r in rules if r in table.columns]].round(1)


def validator_quality(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Per task and validator: Spearman and weighted Spearman (Musgrave et al. 2022) between the
    validator's scores and target accuracy across all checkpoints and hyperparameter draws."""
    from ..validators import spearman, weighted_spearman

    checkpoints = checkpoints_frame(records)
    validators = [c for c in checkpoints.columns if c not in CHECKPOINT_KEYS]
    rows = []
    for task, group in checkpoints.groupby("task", sort=True):
        for v in validators:
            # a checkpoint the validator failed on keeps a NaN score: it counts as its worst score
            ok = group[[v, "target_accuracy"]].dropna(subset=["target_accuracy"])
            scores, accuracy = ok[v].values, ok["target_accuracy"].values
            rows.append({
                "task": task, "validator": v, "checkpoints": len(ok), "spearman": spearman(scores, accuracy),
                "weighted_spearman": weighted_spearman(scores, accuracy, weighting="code2023"),
                "weighted_spearman_paper2022": weighted_spearman(scores, accuracy, weighting="paper2022"),
            })  # fmt: skip
    return pd.DataFrame(rows)


def write_selection_report(records: list[dict[str, Any]], out: Path, figures: bool = True) -> dict[str, Any]:
    """Selection-rule and validator-quality tables (and a figure) when the runs scored validators."""
    selection = selection_frame(records)
    if selection.empty or not selection["rule"].str.startswith("val: ").any():
        return {}
    chosen = select_hyperparameters(selection)
    table = selection_table(chosen)
    quality = validator_quality(records)
    caption = ("Target accuracy (%) under each selection rule (checkpoint and hyperparameters), mean over tasks; "
               f"'{ORACLE}' is an upper bound, not a result")  # fmt: skip
    chosen.to_csv(out / "selection.csv", index=False)
    (out / "selection.md").write_text(to_markdown(table, caption))
    quality.to_csv(out / "validators.csv", index=False)
    wide = quality.pivot(index="validator", columns="task", values="weighted_spearman")
    wide = wide[sorted(wide.columns, key=_task_key)]
    wide["mean"] = wide.mean(axis=1)
    wide = wide.sort_values("mean", ascending=False)
    quality_caption = ("Weighted Spearman correlation of each validator with target accuracy (Musgrave et al., "
                       "weights as in their code since 2023)")  # fmt: skip
    (out / "validators.md").write_text(to_markdown(wide.round(3), quality_caption))
    study = selection_study(selection)
    study_caption = ("Label-free checkpoint selection over the adaptation runs: accuracy change from the last "
                     "checkpoint, share of the oracle's change recovered, gain over SourceOnly and negative "
                     "transfer rate (both with SourceOnly selected by the same rule)")  # fmt: skip
    if not study.empty:
        study.reset_index().to_csv(out / "selection_study.csv", index=False)
        shown = study.assign(**{"negative transfer": study["negative transfer"].map(lambda v: f"{100 * v:.0f}%")})
        (out / "selection_study.md").write_text(to_markdown(shown.round(2), study_caption))
    paths = []
    if figures:
        import matplotlib.pyplot as plt
        import seaborn as sns

        fig, ax = plt.subplots(figsize=(1.8 + 1.5 * len(wide.columns), 0.9 + 0.5 * len(wide)))
        sns.heatmap(wide, annot=True, fmt=".2f", cmap="RdBu_r", vmin=-1, vmax=1, center=0, ax=ax,
                    linewidths=0.5, cbar_kws={"label": "weighted Spearman"})  # fmt: skip
        ax.set_xticklabels([_task_label(t.get_text()) for t in ax.get_xticklabels()], rotation=0, fontsize=8)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.set_title("How well each validator ranks checkpoints (1 = perfectly, 0 = no better than chance)")
        paths.append(_save(fig, out / "validators.png"))
    return {"selection": chosen, "selection_table": table, "selection_caption": caption, "quality": wide,
            "quality_caption": quality_caption, "study": study, "study_caption": study_caption,
            "figures": paths}  # fmt: skip


def compare_published(summary: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, str] | None:
    """Our mean accuracy beside the published one, per task (or the task average) and method."""
    if not path.exists() or summary.empty:
        return None
    import json

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


# ---------------------------------------------------------------- gains over SourceOnly and negative transfer
BASELINE = "source_only"
#: A method transfers negatively on a (task, seed) pair when it is this many points below SourceOnly.
NEGATIVE_TRANSFER_POINTS = 2.0


def paired_gains(results: pd.DataFrame, value: str = "score") -> pd.DataFrame:
    """Each adaptation run's gain (points) over the SourceOnly run of the same task, budget and seed.

    ``results`` has columns method, task, seed, ``value`` (a fraction) and optionally budget and rule;
    runs are paired within a rule, so a selection rule is compared with SourceOnly under the same rule.
    """
    keys = ["task", "seed"] + [k for k in ("rule",) if k in results.columns]
    base = results[results["method"] == BASELINE].set_index(keys)[value].rename("baseline")
    others = results[results["method"] != BASELINE].join(base, on=keys, how="inner")
    return others.assign(gain=100 * (others[value] - others["baseline"]))


def transfer_summary(gains: pd.DataFrame) -> pd.DataFrame:
    """Per method (and budget): mean gain over SourceOnly with a 95 % t-interval over the (task, seed)
    pairs, and the negative transfer rate: the share of pairs more than 2 points below SourceOnly."""
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
    """``transfer_summary`` as strings: 'gain ± ci' and the negative transfer rate in %."""
    return pd.DataFrame(
        {
            "gain over SourceOnly (points)": [_cell(g, c) for g, c in zip(table["gain"], table["ci95"])],
            "negative transfer": [f"{100 * v:.0f}%" for v in table["negative_transfer"]],
            "pairs": table["pairs"],
            "tasks below SourceOnly": table["tasks_below"],
        },
        index=table.index,
    )


def selection_study(selection: pd.DataFrame) -> pd.DataFrame:
    """What label-free checkpoint selection buys, per validator, over the adaptation runs.

    * ``gain vs last``: mean accuracy change (points) from the last checkpoint to the validator's pick;
    * ``oracle gain recovered``: that change summed over runs, divided by the oracle's summed change
      (1 = as good as picking with target labels, 0 = no better than the last checkpoint);
    * ``negative transfer``: the share of (task, seed) pairs more than 2 points below SourceOnly,
      both selected by the same rule; the 'last' row is the rate without selection.
    """
    if selection.empty:
        return pd.DataFrame()
    single = selection[selection.groupby(["task", "method", "seed", "rule"])["draw"].transform("nunique") == 1]
    wide = single.pivot_table(index=["method", "task", "seed"], columns="rule", values="accuracy")
    adapted = wide[wide.index.get_level_values("method") != BASELINE]
    gains = paired_gains(single, value="accuracy")
    rows = []
    for rule in [c for c in wide.columns if c == "last" or c.startswith("val: ")]:
        change = 100 * (adapted[rule] - adapted["last"])
        oracle = 100 * (adapted[ORACLE] - adapted["last"])
        rule_gains = gains[gains["rule"] == rule]["gain"]
        rows.append({
            "rule": rule,
            "gain vs last (points)": change.mean(),
            "oracle gain recovered": change.sum() / oracle.sum() if oracle.sum() > 0 else np.nan,
            "gain over SourceOnly (points)": rule_gains.mean(),
            "negative transfer": float((rule_gains < -NEGATIVE_TRANSFER_POINTS).mean()),
        })  # fmt: skip
    return pd.DataFrame(rows).set_index("rule")
