"""Model selection without target labels: checkpoints and hyperparameter draws picked by validators,
compared with the last checkpoint and with the oracle, and how well each validator ranks checkpoints."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...validators import spearman, weighted_spearman
from ..scoring import decode_predictions
from .common import ci95, task_key
from .tables import runs_frame, task_name, to_markdown
from .transfer import BASELINE, NEGATIVE_TRANSFER_POINTS, paired_gains

ORACLE = "oracle (uses target labels)"
#: Columns of :func:`checkpoints_frame` that are not validator scores.
CHECKPOINT_KEYS = ("id", "method", "task", "budget", "draw", "seed", "step", "target_accuracy")
#: Label-free estimates of a run's final model that are not validators (no checkpoint selects by them):
#: 'agreement', its predictions' agreement with the next seed's run of the same configuration.
RUN_ESTIMATES = ("agreement",)


@dataclass(frozen=True)
class SelectionReport:
    """The selection tables :func:`write_selection_report` wrote, with their captions.

    Attributes
    ----------
    chosen : pandas.DataFrame
        :func:`select_hyperparameters`: per task, method and rule, the draw picked and its accuracy.
    table : pandas.DataFrame
        :func:`selection_table`: methods x rules, accuracy (%) averaged over tasks.
    caption : str
        Caption of ``table``.
    quality : pandas.DataFrame
        Validators x tasks of weighted Spearman correlation with target accuracy, plus the mean.
    quality_caption : str
        Caption of ``quality``.
    study : pandas.DataFrame
        :func:`selection_study` (empty when it has nothing to compare).
    study_caption : str
        Caption of ``study``.
    """

    chosen: pd.DataFrame
    table: pd.DataFrame
    caption: str
    quality: pd.DataFrame
    quality_caption: str
    study: pd.DataFrame
    study_caption: str


def checkpoints_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per evaluated checkpoint: run identity, step, target accuracy and validator scores.

    Parameters
    ----------
    records : list of dict
        Run records; failed runs and checkpoints without a target accuracy are left out.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CHECKPOINT_KEYS` and one column per validator (empty without checkpoints).
    """
    rows = []
    for r in records:
        if r["status"] != "ok":
            continue
        c = r["config"]
        for point in r.get("curve", []):
            if point.get("target_accuracy") is None:
                continue
            row = {"id": r["id"], "method": c.get("variant") or c["method"], "task": task_name(c),
                   "budget": c.get("budget"), "draw": c.get("draw", 0), "seed": c["seed"], "step": point["step"],
                   "target_accuracy": point["target_accuracy"]}  # fmt: skip
            row.update({k[4:]: v for k, v in point.items() if k.startswith("val_")})
            rows.append(row)
    frame = pd.DataFrame(rows)
    agreement = seed_agreement(records)
    if agreement and not frame.empty:  # on each run's last checkpoint: its final model made the predictions
        last = frame.groupby("id")["step"].transform("max") == frame["step"]
        frame.loc[last, "agreement"] = frame.loc[last, "id"].map(agreement)
    return frame


def seed_agreement(records: list[dict[str, Any]]) -> dict[str, float]:
    """Per run id: the fraction of target test examples on which the run's final model predicts what the run
    of the next seed (cyclically) of the same configuration predicts -- two runs of one recipe that differ only
    in their seed, whose agreement estimates either's accuracy (:func:`adapt.estimate.agreement_rate`; Jiang et
    al., ICLR 2022; Baek et al., NeurIPS 2022). Runs without recorded predictions, or without a partner on the
    same target examples (another data seed), have none."""
    groups: dict[str, dict[int, dict[str, Any]]] = {}
    for r in records:
        if r["status"] == "ok" and r.get("target_predictions"):
            rest = {k: v for k, v in r["config"].items() if k != "seed"}
            groups.setdefault(json.dumps(rest, sort_keys=True, default=str), {})[r["config"]["seed"]] = r
    agreement = {}
    for runs in groups.values():
        seeds = sorted(runs)
        for i, seed in enumerate(seeds if len(seeds) > 1 else []):
            partner = seeds[(i + 1) % len(seeds)]
            mine, theirs = (decode_predictions(runs[s]["target_predictions"]) for s in (seed, partner))
            if len(mine) == len(theirs):
                agreement[runs[seed]["id"]] = float((mine == theirs).mean())
    return agreement


def selection_frame(checkpoints: pd.DataFrame | list[dict[str, Any]], runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per run and selection rule: the chosen checkpoint's step, target accuracy and rule score.

    Rules: 'last'; 'val: <name>' (the checkpoint with the best validator score); and the oracle
    (the checkpoint with the best target accuracy), which uses target labels and is an upper bound.
    A failed run has a row per rule too, without accuracy (``status`` 'failed'): whatever the rule,
    it gave no model, which counts as negative transfer in :func:`selection_study`.

    Parameters
    ----------
    checkpoints : pandas.DataFrame or list of dict
        :func:`checkpoints_frame` rows, or the run records themselves (then ``runs`` is built from them).
    runs : pandas.DataFrame
        :func:`~adapt.bench.report.tables.runs_frame` rows of the same runs (accuracy, select_by, status).

    Returns
    -------
    pandas.DataFrame
        Columns method, task, budget, draw, seed, rule, step, accuracy, score and status (empty without
        checkpoints).
    """
    if isinstance(checkpoints, list):
        checkpoints, runs = checkpoints_frame(checkpoints), runs_frame(checkpoints)
    if checkpoints.empty or runs is None:
        return pd.DataFrame()
    by_id = runs.set_index("id")
    validators = [c for c in checkpoints.columns if c not in CHECKPOINT_KEYS + RUN_ESTIMATES]
    rows = []
    for run_id, group in checkpoints.groupby("id", sort=True):
        group = group.sort_values("step")
        base = {**group.iloc[0][["method", "task", "budget", "draw", "seed"]].to_dict(), "status": "ok"}
        select_by = by_id.loc[run_id].get("select_by")
        select_by = select_by if isinstance(select_by, str) else None
        last = group.iloc[-1]
        rows.append({**base, "rule": "last", "step": last["step"], "accuracy": by_id.loc[run_id, "accuracy"],
                     "score": last.get(select_by, np.nan) if select_by else np.nan})  # fmt: skip
        for v in validators:
            if group[v].notna().any():
                best = group.loc[group[v].idxmax()]
                rows.append({**base, "rule": f"val: {v}", "step": best["step"], "accuracy": best["target_accuracy"],
                             "score": best[v]})  # fmt: skip
        best = group.loc[group["target_accuracy"].idxmax()]
        rows.append({**base, "rule": ORACLE, "step": best["step"], "accuracy": best["target_accuracy"],
                     "score": best["target_accuracy"]})  # fmt: skip
    rules = ["last", *[f"val: {v}" for v in validators], ORACLE]
    for _, run in runs[runs["status"] != "ok"].iterrows():
        base = {k: run.get(k) for k in ("method", "task", "budget", "draw", "seed")}
        rows += [{**base, "status": "failed", "rule": rule, "step": np.nan, "accuracy": np.nan, "score": np.nan}
                 for rule in rules]  # fmt: skip
    return pd.DataFrame(rows)


def select_hyperparameters(selection: pd.DataFrame) -> pd.DataFrame:
    """Per task, method and rule: the hyperparameter draw the rule picks, and its accuracy over seeds.

    A validator rule picks the draw with the best mean validator score (never target accuracy);
    the oracle picks by target accuracy; 'last' uses the suite's select_by score when there are
    several draws (else its single draw).

    Parameters
    ----------
    selection : pandas.DataFrame
        The output of :func:`selection_frame`.

    Returns
    -------
    pandas.DataFrame
        One row per task, method and rule: the draw, its mean score, and accuracy, std, n and ci95 (in %).
    """
    if selection.empty:
        return pd.DataFrame()
    per_draw = selection.groupby(["task", "method", "rule", "draw"]).agg(
        score=("score", "mean"), accuracy=("accuracy", "mean"), std=("accuracy", "std"), n=("accuracy", "count"),
        ci95=("accuracy", ci95),
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
    """Methods x rules: target accuracy (%) averaged over tasks; the oracle column comes last.

    Parameters
    ----------
    chosen : pandas.DataFrame
        The output of :func:`select_hyperparameters`.

    Returns
    -------
    pandas.DataFrame
        Columns 'last', the validator rules in name order, then :data:`ORACLE`; rounded to 0.1.
    """
    table = chosen.pivot_table(index="method", columns="rule", values="accuracy", aggfunc="mean")
    rules = ["last", *sorted(c for c in table.columns if c.startswith("val: ")), ORACLE]
    return table[[r for r in rules if r in table.columns]].round(1)


def validator_quality(checkpoints: pd.DataFrame | list[dict[str, Any]], by_method: bool = False) -> pd.DataFrame:
    """Per task and validator: how well the validator's scores rank checkpoints by target accuracy.

    Spearman and weighted Spearman (Musgrave et al. 2022) are taken across the checkpoints and
    hyperparameter draws of each task (a task of a suite with budgets is one task per budget).
    Pooled (``by_method`` False): over every *adaptation* method's checkpoints of the task together,
    SourceOnly's left out (it is what the adaptation is compared with, not a candidate). Per method
    (``by_method`` True): over each method's own checkpoints, SourceOnly's included as a method.

    Parameters
    ----------
    checkpoints : pandas.DataFrame or list of dict
        :func:`checkpoints_frame` rows, or run records.
    by_method : bool
        One row per task, method and validator instead of per task and validator.

    Returns
    -------
    pandas.DataFrame
        Columns task, (method,) validator, checkpoints, spearman, weighted_spearman (weights of the 2023
        code) and weighted_spearman_paper2022.
    """

    if isinstance(checkpoints, list):
        checkpoints = checkpoints_frame(checkpoints)
    if checkpoints.empty:
        return pd.DataFrame()
    validators = [c for c in checkpoints.columns if c not in CHECKPOINT_KEYS + RUN_ESTIMATES]
    groups = (checkpoints.groupby(["task", "method"], sort=True) if by_method else
              checkpoints[checkpoints["method"] != BASELINE].groupby("task", sort=True))  # fmt: skip
    rows = []
    for key, group in groups:
        where = dict(zip(("task", "method"), key)) if by_method else {"task": key}
        for v in validators:
            # a checkpoint the validator failed on keeps a NaN score: it counts as its worst score
            ok = group[[v, "target_accuracy"]].dropna(subset=["target_accuracy"])
            scores, accuracy = ok[v].values, ok["target_accuracy"].values
            rows.append({
                **where, "validator": v, "checkpoints": len(ok), "spearman": spearman(scores, accuracy),
                "weighted_spearman": weighted_spearman(scores, accuracy, weighting="code2023"),
                "weighted_spearman_paper2022": weighted_spearman(scores, accuracy, weighting="paper2022"),
            })  # fmt: skip
    return pd.DataFrame(rows)


def quality_by_method(quality: pd.DataFrame) -> pd.DataFrame:
    """Validators x methods of weighted Spearman averaged over tasks (from ``validator_quality(...,
    by_method=True)``), best validator first by its mean over methods."""
    wide = quality.pivot_table(index="validator", columns="method", values="weighted_spearman", aggfunc="mean")
    wide["mean over methods"] = wide.mean(axis=1)
    return wide.sort_values("mean over methods", ascending=False)


def selection_study(selection: pd.DataFrame) -> pd.DataFrame:
    """What label-free checkpoint selection buys, per validator, over the adaptation runs.

    * ``gain vs last``: mean accuracy change (points) from the last checkpoint to the validator's pick;
    * ``oracle gain recovered``: that change summed over runs, divided by the oracle's summed change
      (1 = as good as picking with target labels, 0 = no better than the last checkpoint);
    * ``negative transfer``: the share of (task, seed) pairs more than 2 points below SourceOnly,
      both selected by the same rule; the 'last' row is the rate without selection.

    Parameters
    ----------
    selection : pandas.DataFrame
        The output of :func:`selection_frame`; only runs of single-draw (task, method) pairs count.

    Returns
    -------
    pandas.DataFrame
        Indexed by rule ('last' and the validator rules); empty when ``selection`` is.
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


def headline_runs(runs: pd.DataFrame, checkpoints: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    """The runs the headline table averages over seeds.

    With a hyperparameter search (several draws per task and method), averaging over draws would
    mix settings; the headline keeps, per task and method, the draw that the suite's ``select_by``
    validator prefers at the last checkpoint (never the one with the best target accuracy).

    Parameters
    ----------
    runs : pandas.DataFrame
        Rows of :func:`~adapt.bench.report.tables.runs_frame`.
    checkpoints : pandas.DataFrame
        :func:`checkpoints_frame` of the same runs.

    Returns
    -------
    tuple of (pandas.DataFrame, str or None)
        The kept runs, and the validator that picked the draws (None without a search).

    Raises
    ------
    ValueError
        With several draws but no validator scores or no ``select_by`` to pick one.
    """
    if runs.empty or runs.groupby(["task", "method"])["draw"].nunique().max() <= 1:
        return runs, None
    selection = selection_frame(checkpoints, runs)
    picked_by = next((v for v in runs.get("select_by", pd.Series(dtype=object)).dropna() if v), None)
    if selection.empty or picked_by is None:
        raise ValueError("a hyperparameter search needs validators and select_by to pick a draw without target labels")
    chosen = select_hyperparameters(selection)
    chosen = chosen[chosen["rule"] == "last"][["task", "method", "draw"]]
    return runs.merge(chosen, on=["task", "method", "draw"]), picked_by


def _quality_table(quality: pd.DataFrame) -> pd.DataFrame:
    """Validators x tasks of weighted Spearman, plus their mean, best validator first."""
    wide = quality.pivot(index="validator", columns="task", values="weighted_spearman")
    wide = wide[sorted(wide.columns, key=task_key)]
    wide["mean"] = wide.mean(axis=1)
    return wide.sort_values("mean", ascending=False)


def _write_study(selection: pd.DataFrame, out: Path) -> tuple[pd.DataFrame, str]:
    """:func:`selection_study` and its caption; writes ``selection_study.csv`` and ``.md`` unless it is empty."""
    study = selection_study(selection)
    caption = ("Label-free checkpoint selection over the adaptation runs: accuracy change from the last "
               "checkpoint, share of the oracle's change recovered, gain over SourceOnly and negative "
               "transfer rate (both with SourceOnly selected by the same rule; failed runs count as "
               "negative transfer)")  # fmt: skip
    if not study.empty:
        percent = study.assign(**{"negative transfer": 100 * study["negative transfer"]})  # % like every file
        percent.rename(columns={"negative transfer": "negative transfer (%)"}).reset_index().to_csv(
            out / "selection_study.csv", index=False
        )
        shown = study.map(lambda v: "n/a" if pd.isna(v) else f"{v:.2f}").assign(
            **{"negative transfer": study["negative transfer"].map(lambda v: f"{100 * v:.0f}%")}
        )
        (out / "selection_study.md").write_text(to_markdown(shown, caption))
    return study, caption


def _three_decimals(value: float) -> str:
    """Correlations for display: always three decimals, 'n/a' when undefined."""
    return "n/a" if pd.isna(value) else f"{value:.3f}"


QUALITY_CAPTION = (
    "Weighted Spearman correlation of each validator with target accuracy (Musgrave et al., weights as in their "
    "code since 2023), from -1 to 1: 1 = ranks checkpoints as target accuracy does, 0 = unrelated, below 0 = "
    "prefers the worse checkpoints; n/a = undefined (the score or the accuracy did not vary)"
)


def write_selection_report(runs: pd.DataFrame, checkpoints: pd.DataFrame, out: Path) -> SelectionReport | None:
    """Selection-rule and validator-quality tables, when the runs scored validators.

    Writes ``selection.csv``, ``selection.md``, ``validators.csv``, ``validators.md`` (pooled over the
    adaptation methods of each task), ``validators_by_method.csv`` and ``.md`` (each method's own
    checkpoints, averaged over tasks) and, when there is something to compare, ``selection_study.csv``
    and ``selection_study.md``. The validator figure is drawn by
    :func:`~adapt.bench.report.figures.validators_figure`.

    Parameters
    ----------
    runs : pandas.DataFrame
        :func:`~adapt.bench.report.tables.runs_frame` rows.
    checkpoints : pandas.DataFrame
        :func:`checkpoints_frame` of the same runs.
    out : pathlib.Path
        The report folder.

    Returns
    -------
    SelectionReport or None
        The tables and captions, or None when no run scored a validator.
    """
    selection = selection_frame(checkpoints, runs)
    if selection.empty or not selection["rule"].str.startswith("val: ").any():
        return None
    chosen = select_hyperparameters(selection)
    table = selection_table(chosen)
    caption = ("Target accuracy (%) under each selection rule (checkpoint and hyperparameters), mean over tasks; "
               f"'{ORACLE}' is an upper bound, not a result")  # fmt: skip
    chosen.to_csv(out / "selection.csv", index=False)
    (out / "selection.md").write_text(to_markdown(table, caption))
    quality = validator_quality(checkpoints)
    quality.to_csv(out / "validators.csv", index=False)
    wide = _quality_table(quality)
    quality_caption = f"{QUALITY_CAPTION}; per task, pooled over the checkpoints of every adaptation method"
    (out / "validators.md").write_text(to_markdown(wide.map(_three_decimals), quality_caption))
    per_method = validator_quality(checkpoints, by_method=True)
    per_method.to_csv(out / "validators_by_method.csv", index=False)
    (out / "validators_by_method.md").write_text(to_markdown(
        quality_by_method(per_method).map(_three_decimals),
        f"{QUALITY_CAPTION}; per method, over its own checkpoints, averaged over tasks"))  # fmt: skip
    study, study_caption = _write_study(selection, out)
    return SelectionReport(chosen, table, caption, wide, quality_caption, study, study_caption)
