"""Tables and figures from the run records alone (no model is loaded, nothing is retrained).

:func:`write_report` builds the whole report and returns a :class:`Report`. The pieces live in
:mod:`.tables` (headline tables, Markdown/LaTeX), :mod:`.transfer` (gains over SourceOnly and
negative transfer), :mod:`.selection` (label-free model selection and validator quality) and
:mod:`.figures` (PNG figures); their public names are re-exported here.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..._files import claim
from ..records import read_records
from .backends import backend_comparison, write_backends
from .catalogue import method_table, write_method_table
from .common import runs_protocol, streamed_once
from .estimation import estimation_errors, guard_table, guarded_runs, margin_sweep, write_estimation_report
from .figures import curves_frame, make_figures, validators_figure
from .ranks import RankTest, critical_difference_figure, friedman_nemenyi, write_ranks
from .selection import (
    CHECKPOINT_KEYS,
    ORACLE,
    SelectionReport,
    checkpoints_frame,
    headline_runs,
    select_hyperparameters,
    selection_frame,
    selection_study,
    selection_table,
    validator_quality,
    write_selection_report,
)
from .streams import compute_table, round_table, stream_points, write_stream_report
from .tables import (
    compare_published,
    formatted_table,
    leaderboard,
    runs_frame,
    summarize,
    task_name,
    to_latex,
    to_markdown,
)
from .transfer import (
    BASELINE,
    NEGATIVE_TRANSFER_POINTS,
    format_transfer,
    paired_gains,
    transfer_summary,
    write_transfer,
)

__all__ = [
    "BASELINE",
    "CHECKPOINT_KEYS",
    "NEGATIVE_TRANSFER_POINTS",
    "ORACLE",
    "RankTest",
    "Report",
    "SelectionReport",
    "backend_comparison",
    "checkpoints_frame",
    "compare_published",
    "compute_table",
    "curves_frame",
    "estimation_errors",
    "format_transfer",
    "formatted_table",
    "friedman_nemenyi",
    "guard_table",
    "guarded_runs",
    "headline_runs",
    "leaderboard",
    "make_figures",
    "margin_sweep",
    "method_table",
    "paired_gains",
    "round_table",
    "runs_frame",
    "select_hyperparameters",
    "selection_frame",
    "selection_study",
    "selection_table",
    "stream_points",
    "summarize",
    "task_name",
    "to_latex",
    "to_markdown",
    "transfer_summary",
    "validator_quality",
    "write_backends",
    "write_estimation_report",
    "write_method_table",
    "write_ranks",
    "write_report",
    "write_selection_report",
    "write_stream_report",
    "write_transfer",
]


@dataclass(frozen=True)
class Report:
    """What :func:`write_report` wrote; the optional parts are None when the runs do not support them.

    Attributes
    ----------
    runs : pandas.DataFrame
        Every run (:func:`runs_frame`), as in ``runs.csv``.
    summary : pandas.DataFrame
        Per task and method over the headline runs (:func:`summarize`), as in ``summary.csv``.
    table : pandas.DataFrame
        The headline leaderboard as strings (:func:`formatted_table`); empty when no run finished.
    caption : str
        Caption of ``table``.
    failed : pandas.DataFrame
        The failed runs: method, task, seed, error and failed_step.
    out : pathlib.Path
        The report folder.
    figures : list of pathlib.Path
        The PNG files written (empty with ``figures=False``).
    transfer, transfer_caption : pandas.DataFrame, str or None
        Gain over SourceOnly and negative transfer (:func:`format_transfer`), when SourceOnly ran.
    selection : pandas.DataFrame or None
        Per task, method and selection rule, the draw picked and its accuracy (:func:`select_hyperparameters`).
    selection_table, selection_caption : pandas.DataFrame, str or None
        Methods x selection rules (:func:`selection_table`).
    quality, quality_caption : pandas.DataFrame, str or None
        Validators x tasks of weighted Spearman with target accuracy, plus the mean.
    study, study_caption : pandas.DataFrame, str or None
        :func:`selection_study` (may be empty).
    published : tuple of (pandas.DataFrame, str) or None
        Ours beside published numbers, and its caption (:func:`compare_published`).
    methods, methods_caption : pandas.DataFrame, str or None
        One row per adaptation method: family, paper, adaptation term, gain over SourceOnly, negative
        transfer rate and the tasks where it is above SourceOnly (:func:`method_table`).
    ranks, ranks_caption : pandas.DataFrame, str or None
        Average rank per method over the tasks, with the Friedman test and the Nemenyi critical
        difference in the caption (:func:`write_ranks`; at least 3 methods on 2 tasks).
    backends, backends_caption : pandas.DataFrame, str or None
        Our implementation of a method beside pytorch-adapt's (``pa:<method>``), paired (:func:`write_backends`).
    estimation, estimation_caption : pandas.DataFrame, str or None
        Accuracy estimators x shifts of the mean absolute error at the last checkpoint (:func:`estimation_errors`).
    guard, guard_caption : pandas.DataFrame, str or None
        Gain and negative transfer without and with the guard, per method and budget (:func:`guard_table`).
    stream, stream_caption : pandas.DataFrame, str or None
        Online accuracy per round of a repeated stream, per method (:func:`round_table`).
    compute, compute_caption : pandas.DataFrame, str or None
        The relative speed of each method under a compute-charged stream (:func:`compute_table`).
    """

    runs: pd.DataFrame
    summary: pd.DataFrame
    table: pd.DataFrame
    caption: str
    failed: pd.DataFrame
    out: Path
    figures: list[Path] = field(default_factory=list)
    transfer: pd.DataFrame | None = None
    transfer_caption: str | None = None
    selection: pd.DataFrame | None = None
    selection_table: pd.DataFrame | None = None
    selection_caption: str | None = None
    quality: pd.DataFrame | None = None
    quality_caption: str | None = None
    study: pd.DataFrame | None = None
    study_caption: str | None = None
    published: tuple[pd.DataFrame, str] | None = None
    methods: pd.DataFrame | None = None
    methods_caption: str | None = None
    ranks: pd.DataFrame | None = None
    ranks_caption: str | None = None
    backends: pd.DataFrame | None = None
    backends_caption: str | None = None
    estimation: pd.DataFrame | None = None
    estimation_caption: str | None = None
    guard: pd.DataFrame | None = None
    guard_caption: str | None = None
    stream: pd.DataFrame | None = None
    stream_caption: str | None = None
    compute: pd.DataFrame | None = None
    compute_caption: str | None = None


def write_report(
    results: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, figures: bool = True
) -> Report:
    """Build every table and figure from ``<results>/runs/*.json``.

    Parameters
    ----------
    results : str or path-like
        The results folder of ``adapt-bench run``; ``<results>/published.json``, when present,
        adds the comparison with published numbers.
    out : str or path-like, optional
        Where to write the report (default ``<results>/report``).
    figures : bool
        Draw the PNG figures (tables only when False).

    Returns
    -------
    Report
        The tables, captions and figure paths written.

    Raises
    ------
    FileNotFoundError
        When ``<results>/runs`` is missing or holds no records.
    """
    results = Path(results)
    if not (results / "runs").is_dir():
        raise FileNotFoundError(f"no run records under {results / 'runs'}; run 'adapt-bench run' first")
    records = read_records(results)
    if not records:
        raise FileNotFoundError(f"{results / 'runs'} holds no records")
    out = Path(out) if out else results / "report"
    out.mkdir(parents=True, exist_ok=True)
    # Every file is written into a staging folder, then renamed into place: a crash or a full disk
    # leaves the previous report whole, never a truncated file. Reports into one folder take turns (two
    # sweeps that finish together), so a staging folder left over is a killed report's.
    with claim(out / ".report.lock", wait=True):
        for stale in out.glob(".staging-*"):
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(dir=out, prefix=".staging-"))
        try:
            report = _build_report(records, results, staging, figures)
            for path in sorted(staging.iterdir()):
                os.replace(path, out / path.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return dataclasses.replace(report, out=out, figures=[out / p.name for p in report.figures])


def _build_report(records: list[dict[str, Any]], results: Path, out: Path, figures: bool) -> Report:
    """Every table and figure of :func:`write_report`, written into ``out``."""
    return build_report(runs_frame(records), checkpoints_frame(records), results, out, figures)


def build_report(runs: pd.DataFrame, checkpoints: pd.DataFrame, results: Path, out: Path, figures: bool) -> Report:
    """Every table and figure of :func:`write_report`, from the runs and their checkpoints as frames (what a
    results summary holds: :mod:`adapt.bench.results`), written into ``out``."""
    headline, picked_by = headline_runs(runs, checkpoints)
    summary = summarize(headline)
    text = formatted_table(summary) if not summary.empty else pd.DataFrame()
    caption = _caption(runs, picked_by) + tuning_caption(results / "suite.json")
    _write_tables(runs, summary, text, caption, out)
    if figures and importlib.util.find_spec("seaborn") is None:
        # Tables are the results; figures need the harness extra. Say so instead of failing after a sweep.
        print("figures skipped: they need seaborn (pip install 'adapt-uda[bench]')", file=sys.stderr)
        figures = False
    paths = []
    if figures and not summary.empty:
        curves = curves_frame(checkpoints)
        curves = curves[curves["id"].isin(headline["id"])] if not curves.empty else curves
        paths = make_figures(headline, summary, curves, out)
    extras = _comparison_tables(headline, summary, out, figures, paths)
    selection = write_selection_report(runs, checkpoints, out)
    if figures and selection is not None:
        paths.append(validators_figure(selection.quality, out))
    estimation = write_estimation_report(checkpoints, out, figures) or {}
    if "estimation_figure" in estimation:
        paths.append(estimation.pop("estimation_figure"))
    streams = write_stream_report(runs, checkpoints, out, figures) or {}
    if "stream_figure" in streams:
        paths.append(streams.pop("stream_figure"))
    published = compare_published(summary, results / "published.json")
    if published is not None:
        (out / "published.md").write_text(to_markdown(*published))
    failed = runs[runs.status != "ok"][["method", "task", "seed", "error", "failed_step"]]
    # the first line of each error: a table cell cannot hold a layout listing (records keep it whole)
    failed = failed.assign(error=failed["error"].fillna("").map(lambda e: e.splitlines()[0] if e else e))
    return Report(runs=runs, summary=summary, table=text, caption=caption, failed=failed, out=out, figures=paths,
                  published=published, **extras, **estimation, **streams,
                  **_selection_fields(selection))  # fmt: skip


def _comparison_tables(
    headline: pd.DataFrame, summary: pd.DataFrame, out: Path, figures: bool, paths: list[Path]
) -> dict[str, Any]:
    """The :class:`Report` fields that compare methods: transfer, method table, ranks (+ CD figure)."""
    fields: dict[str, Any] = {}
    tables = (("transfer", write_transfer(headline, out)), ("methods", write_method_table(headline, out)),
              ("backends", write_backends(headline, out)))  # fmt: skip
    for name, written in tables:
        if written is not None:
            fields[name], fields[f"{name}_caption"] = written
    ranks = write_ranks(summary, out) if not summary.empty else None
    if ranks is not None:
        test, fields["ranks"], fields["ranks_caption"] = ranks
        if figures:
            paths.append(critical_difference_figure(test, out))
    return fields


def tuning_caption(card_path: Path) -> str:
    """'; defaults were tuned on this suite (...)': what a caption adds when the sweep's suite says so."""
    if not card_path.exists():
        return ""
    card = json.loads(card_path.read_text())
    if card.get("defaults_tuned"):
        return (f"; the library's defaults were tuned on this suite ({card.get('tuning_note', '')}): its numbers are "
                "no evidence for them")  # fmt: skip
    if card.get("split") == "confirmation":
        return "; the confirmation half: no default was tuned on it"
    return ""


#: The runs.csv columns that are accuracies: written in % like summary.csv.
PERCENT_COLUMNS = ("accuracy", "score", "mean_class_accuracy", "accuracy_heldout", "accuracy_transductive",
                   "accuracy_after")  # fmt: skip


def _caption(runs: pd.DataFrame, picked_by: str | None) -> str:
    """The headline table's caption: the metric, the selection and the validator that picked draws."""
    metric = "mean class accuracy" if (runs["metric"] == "mean_class_accuracy").all() else "accuracy"
    protocol = runs_protocol(runs)
    if streamed_once(runs):
        return (f"Online target {metric} (%): one pass over the target stream, each batch predicted before the "
                "method adapts on it; mean ± 95% CI over seeds")  # fmt: skip
    labels = sorted({str(v) for v in runs.get("target_labels", pd.Series(dtype=object)).dropna()})
    if labels:  # semi-supervised: say how many target labels trained, and that they were not scored
        shots = ", ".join(f"{v} per class" if v.isdigit() else f"the {v} split" for v in labels)
        caption = (f"Target {metric} (%), mean ± 95% CI over seeds; {shots} labeled target examples used for "
                   "training and kept out of scoring; selection: last checkpoint")  # fmt: skip
    else:
        caption = f"Target {metric} (%), mean ± 95% CI over seeds; selection: last checkpoint (no target labels used)"
    if protocol is not None and protocol.uses_source_model:  # and trains on the target: source-free
        caption += "; source-free: each method adapts the same cached source model with the target alone"
    if picked_by:
        caption += f"; hyperparameters picked by validator '{picked_by}'"
    stale = runs[runs["stale"]] if "stale" in runs else runs.iloc[:0]
    if len(stale):
        methods = ", ".join(sorted(set(stale["method"])))
        caption += (f"; {len(stale)} stale run(s) included ({methods}): made with other defaults or code than this "
                    "library's, kept with --keep-stale, marked in runs.csv")  # fmt: skip
    return caption


def _write_tables(runs: pd.DataFrame, summary: pd.DataFrame, text: pd.DataFrame, caption: str, out: Path) -> None:
    """``runs.csv``, ``summary.csv``, ``summary.md`` and ``summary.tex``."""
    # every file of the report gives accuracies in % (records keep fractions)
    percent = [c for c in PERCENT_COLUMNS if c in runs.columns]
    runs.assign(**{c: 100 * runs[c] for c in percent}).to_csv(out / "runs.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    (out / "summary.md").write_text(to_markdown(text, caption))
    (out / "summary.tex").write_text(to_latex(text, caption))


def _selection_fields(selection: SelectionReport | None) -> dict[str, Any]:
    """The :class:`Report` fields that come from :func:`write_selection_report` (none without it)."""
    if selection is None:
        return {}
    return {
        "selection": selection.chosen,
        "selection_table": selection.table,
        "selection_caption": selection.caption,
        "quality": selection.quality,
        "quality_caption": selection.quality_caption,
        "study": selection.study,
        "study_caption": selection.study_caption,
    }
