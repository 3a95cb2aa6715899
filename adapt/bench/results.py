"""Results pages: every measured table and figure of the README and the docs, regenerated from committed
run summaries by one command.

``adapt-bench results export RESULTS --name NAME`` turns a sweep's records (or a study's) into compact CSV
files under ``docs/results/data/``: one row per run (accuracies in %, with what made it: library
version, commit, date, machine, threads) and, for sweeps with checkpoints, one row per checkpoint
(target accuracy and validator scores). ``adapt-bench results pages`` rebuilds from those files alone
every page under ``docs/results/``, the generated blocks of ``README.md`` (between
``<!-- results:NAME -->`` and ``<!-- /results -->``) and ``docs/data/catalogue_methods.csv``;
``--check`` writes nothing and lists what differs (``tests/bench/test_results_pages.py`` runs it, and checks
that every committed run is what the library runs now). Each page says which version and commit made
its runs, when, on what machine, and whether the library's defaults were tuned on the suite.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .listing import methods_table
from .records import read_records
from .report import PERCENT_COLUMNS, Report, build_report, checkpoints_frame, runs_frame, stream_points, to_markdown
from .report.study_figures import data_efficiency_figure, training_time_figure
from .runner import expand, suite_card
from .studies import APPROACH_LABELS, MARGIN, StudySettings, labels_needed, summarize_study, time_to_accuracy
from .suite import available_suites, load_suite

#: Where the summaries and pages live, relative to the repository root.
DATA = Path("docs/results/data")
PAGES = Path("docs/results")
README = Path("README.md")
CATALOGUE_CSV = Path("docs/data/catalogue_methods.csv")
#: Provenance columns of a summary, from each record.
PROVENANCE = ("version", "torch", "commit", "dirty", "started", "system", "machine", "cpus", "device", "threads")
STUDIES = ("data-efficiency", "training-time")


@dataclass(frozen=True)
class Page:
    """One results page: the summary it is built from, its title, what produced the runs, and the README
    block (if any) its headline table also fills."""

    name: str
    title: str
    command: str
    readme: bool = False


#: Every page, in the order of the results index. ``name`` is the suite's (or study's) name.
PAGE_LIST = (
    Page("quick", "The quick suite", "adapt-bench run --suite quick --out results/quick", readme=True),
    Page("zoo-confirm", "The shift zoo, confirmation half",
         "adapt-bench run --suite zoo-confirm --out results/zoo-confirm --jobs 2"),
    Page("catalogue", "The catalogue on the offline shifts",
         "adapt-bench run --suite catalogue --out results/catalogue --jobs 2"),
    Page("backends", "This library beside pytorch-adapt",
         "adapt-bench run --suite backends --out results/backends --jobs 2"),
    Page("image-shifts-mic", "MIC beside CDAN+MCC on the image shifts",
         "adapt-bench run --suite image-shifts-mic --out results/image-shifts-mic --jobs 2"),
    Page("image-shifts-sdat", "SDAT: the same, sharpness-aware",
         "adapt-bench run --suite image-shifts-sdat --out results/image-shifts-sdat --jobs 2"),
    Page("image-shifts-vit", "SDAT and MIC with a small ViT on the image shifts",
         "adapt-bench run --suite image-shifts-vit --out results/image-shifts-vit --jobs 2"),
    Page("source-free", "Source-free adaptation, offline",
         "adapt-bench run --suite source-free --out results/source-free --jobs 2"),
    Page("corruptions-online", "Test-time adaptation on corrupted digits",
         "adapt-bench run --suite corruptions-online --out results/corruptions-online --jobs 2"),
    Page("corruptions-correlated", "Test-time adaptation on a label-sorted stream",
         "adapt-bench run --suite corruptions-correlated --out results/corruptions-correlated --jobs 2"),
    Page("corruptions-correlated-gn", "Test-time adaptation on a label-sorted stream, GroupNorm network",
         "adapt-bench run --suite corruptions-correlated-gn --out results/corruptions-correlated-gn --jobs 2"),
    Page("corruptions-charged", "Test-time adaptation charged for its compute",
         "adapt-bench run --suite corruptions-charged --out results/corruptions-charged --jobs 2"),
    Page("corruptions-continual", "Continual and gradual test-time adaptation",
         "adapt-bench run --suite corruptions-continual --out results/corruptions-continual --jobs 2"),
    Page("corruptions-mixed", "Test-time adaptation on mixed domains",
         "adapt-bench run --suite corruptions-mixed --out results/corruptions-mixed --jobs 2"),
    Page("corruptions-mixed-correlated", "Test-time adaptation on mixed domains, label-correlated",
         "adapt-bench run --suite corruptions-mixed-correlated --out results/corruptions-mixed-correlated --jobs 2"),
    Page("corruptions-long", "A long continual stream",
         "adapt-bench run --suite corruptions-long --out results/corruptions-long --jobs 2"),
    Page("data-efficiency", "Target labels saved by a source model",
         "adapt-bench study data-efficiency --out results/data-efficiency --jobs 2"),
    Page("training-time", "Training time saved by a source model",
         "adapt-bench study training-time --out results/training-time --jobs 2"),
)  # fmt: skip


# ----------------------------------------------------------------------------- export
def export(results: str | Path, name: str, root: str | Path = ".", update: bool = False) -> list[Path]:
    """Write the summary of the sweep or study in ``results`` as ``<root>/docs/results/data/<name>.*.csv``.

    ``update``: ``results`` holds only the runs that changed (say ``adapt-bench run --methods coral`` after
    CORAL's default moved); the committed summary's other runs are kept where the suite still runs them
    as they are (same run id), those the suite no longer runs are dropped, and ``results``' records replace
    or add the rest.
    """
    results, data = Path(results), Path(root) / DATA
    data.mkdir(parents=True, exist_ok=True)
    if name in STUDIES:
        if update:
            raise ValueError(f"{name} is a study: export it whole (--update is for sweeps)")
        return _export_study(results, name, data)
    records = read_records(results)
    if not records:
        raise FileNotFoundError(f"{results / 'runs'} holds no records to export")
    if name in available_suites():  # a shipped suite: only the runs it runs now (not those of an older file)
        current = {spec.run_id for spec in expand(load_suite(name))}
        left_out = sum(r["id"] not in current for r in records)
        if left_out:
            print(f"{name}: left out {left_out} record(s) in {results / 'runs'} that the suite no longer runs "
                  "(made from an earlier version of its file)", file=sys.stderr)  # fmt: skip
        records = [r for r in records if r["id"] in current]
        if not records:
            raise FileNotFoundError(f"{results / 'runs'} holds no record of a run suite {name} runs now")
    runs = runs_frame(records)
    runs["error"] = runs["error"].map(lambda e: e.splitlines()[0][:200] if isinstance(e, str) and e else e)
    provenance = pd.DataFrame([_provenance(r) for r in records]).set_index("id")
    runs = runs.join(provenance.drop(columns=[c for c in provenance.columns if c in runs.columns]), on="id")
    runs = runs.assign(**{c: 100 * runs[c] for c in PERCENT_COLUMNS if c in runs})
    checkpoints = checkpoints_frame(records)
    if not checkpoints.empty:
        checkpoints = checkpoints.assign(target_accuracy=100 * checkpoints["target_accuracy"])
    if update:
        runs, checkpoints = _updated(name, data, runs, checkpoints)
    written = [data / f"{name}.runs.csv"]
    runs.to_csv(written[0], index=False)
    if not checkpoints.empty:
        written.append(data / f"{name}.checkpoints.csv")
        checkpoints.to_csv(written[1], index=False)
    return written


def _updated(name: str, data: Path, runs: pd.DataFrame, checkpoints: pd.DataFrame) -> tuple[pd.DataFrame, ...]:
    """The committed summary of ``name`` with ``runs`` (and their checkpoints) in place of its stale rows."""
    path = data / f"{name}.runs.csv"
    if not path.exists():
        raise FileNotFoundError(f"--update needs a committed summary to update, and {path} does not exist")
    current = {spec.run_id for spec in expand(load_suite(name))}
    foreign = sorted(set(runs["id"]) - current)
    if foreign:
        raise ValueError(f"{len(foreign)} record(s) in the results are not runs of the suite {name} as it stands "
                         f"(first: {foreign[0]}): rerun them with the current code")  # fmt: skip
    committed = pd.read_csv(path)
    kept = committed[committed["id"].isin(current) & ~committed["id"].isin(runs["id"])]
    merged = pd.concat([kept, runs], ignore_index=True)  # the kept rows in their order: a diff shows the change
    old_points = data / f"{name}.checkpoints.csv"
    if old_points.exists():
        points = pd.read_csv(old_points)
        checkpoints = pd.concat([points[points["id"].isin(kept["id"])], checkpoints], ignore_index=True)
    return merged, checkpoints


def _provenance(record: dict[str, Any]) -> dict[str, Any]:
    commit, machine = record.get("commit") or {}, record.get("machine") or {}
    versions = record.get("versions") or {}
    return {"id": record["id"], "spec_id": record.get("spec_id"), "version": versions.get("adapt"),
            "torch": versions.get("torch"), "commit": commit.get("sha"), "dirty": commit.get("dirty"),
            "started": record.get("started"), "system": machine.get("system"), "machine": machine.get("machine"),
            "cpus": machine.get("cpus"), "device": record.get("device"), "threads": record.get("threads"),
            "failure": record.get("failure")}  # fmt: skip


def _export_study(results: Path, name: str, data: Path) -> list[Path]:
    """A study's records, one row each (the training-time curves in a file of their own)."""
    records = [json.loads(p.read_text()) for p in sorted((results / "runs").glob("*.json"))]
    records = [r for r in records if not r.get("skipped")]
    if not records:
        raise FileNotFoundError(f"{results / 'runs'} holds no study records to export")
    rows, curves = [], []
    for r in records:
        row = {k: v for k, v in r.items() if k not in ("key", "curve", "versions", "commit", "machine")}
        made = {k: v for k, v in _provenance({**r, "id": None}).items() if k not in ("id", "spec_id", "failure")}
        rows.append({**row, **made})
        curves += [{**{k: r[k] for k in ("task", "start", "seed", "source_seconds")}, **point}
                   for point in r.get("curve", [])]  # fmt: skip
    written = [data / f"{name}.runs.csv"]
    pd.DataFrame(rows).to_csv(written[0], index=False)
    if curves:
        written.append(data / f"{name}.curves.csv")
        pd.DataFrame(curves).to_csv(written[1], index=False)
    (data / f"{name}.study.json").write_text(json.dumps(json.loads((results / "study.json").read_text()), indent=1)
                                             + "\n")  # fmt: skip
    return [*written, data / f"{name}.study.json"]


# ----------------------------------------------------------------------------- loading
def load_summary(name: str, root: str | Path = ".") -> tuple[pd.DataFrame, pd.DataFrame]:
    """A sweep's committed runs and checkpoints as the report builds them (accuracies as fractions)."""
    data = Path(root) / DATA
    runs = pd.read_csv(data / f"{name}.runs.csv")
    runs = runs.assign(**{c: runs[c] / 100 for c in PERCENT_COLUMNS if c in runs})
    runs["budget"] = runs["budget"].astype("Int64") if runs["budget"].notna().any() else None
    runs["stale"] = runs["stale"].astype(bool)
    path = data / f"{name}.checkpoints.csv"
    checkpoints = pd.read_csv(path) if path.exists() else pd.DataFrame()
    if not checkpoints.empty:
        checkpoints["target_accuracy"] = checkpoints["target_accuracy"] / 100
        if checkpoints["budget"].notna().any():
            checkpoints["budget"] = checkpoints["budget"].astype("Int64")
    return runs, checkpoints


def provenance_line(runs: pd.DataFrame) -> str:
    """'Runs made by adapt 0.2.0 (commit a079a6b) on 2026-12-03, Linux x86_64, 2 CPUs, cpu, 1 thread per run.'"""

    def listed(column: str, fmt: Any = str) -> str:
        values = sorted({fmt(v) for v in runs[column].dropna()}) if column in runs else []
        return ", ".join(values) or "unknown"

    dates = sorted(str(v)[:10] for v in runs["started"].dropna()) if "started" in runs else []
    when = "unknown dates" if not dates else dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"
    dirty = " with uncommitted changes" if "dirty" in runs and runs["dirty"].fillna(False).astype(bool).any() else ""
    return (f"Runs made by adapt {listed('version')} (commit {listed('commit', lambda s: str(s)[:7])}{dirty}), "
            f"torch {listed('torch')}, on {when}: {listed('system')} {listed('machine')}, "
            f"{listed('cpus', lambda v: str(int(v)))} CPUs, device {listed('device')}, "
            f"{listed('threads', lambda v: str(int(v)))} thread(s) per run.")  # fmt: skip


# ----------------------------------------------------------------------------- pages
def render(root: str | Path = ".", figures: bool = True) -> dict[Path, str | bytes]:
    """Every generated file (relative path -> content) from the committed summaries under ``root``."""
    root = Path(root)
    files: dict[Path, str | bytes] = {}
    blocks: dict[str, str] = {}
    available = [p for p in PAGE_LIST if (root / DATA / f"{p.name}.runs.csv").exists()]
    with tempfile.TemporaryDirectory() as tmp:
        for page in available:
            folder = Path(tmp) / page.name
            folder.mkdir()
            if page.name in STUDIES:
                text = _study_page(page, root, folder, figures)
            else:
                text, report = _sweep_page(page, root, folder, figures)
                if page.readme:
                    blocks[page.name] = _readme_block(report)
                if page.name == "catalogue" and report.methods is not None:
                    files[CATALOGUE_CSV] = report.methods.to_csv(index=False)
            files[PAGES / f"{page.name}.md"] = text
            for png in sorted(folder.glob("*.png")):
                files[PAGES / page.name / png.name] = png.read_bytes()
    files[PAGES / "index.md"] = _index(available)
    blocks["methods"] = methods_table()  # registering a method is all it takes to list it
    readme = root / README
    if readme.exists():
        files[README] = fill_blocks(readme.read_text(), blocks)
    return files


def write_pages(root: str | Path = ".", figures: bool = True) -> list[Path]:
    """Write every generated file under ``root``; the paths written."""
    root = Path(root)
    for page in PAGE_LIST:  # figures of a page are remade whole
        shutil.rmtree(root / PAGES / page.name, ignore_errors=True)
    written = []
    for path, content in render(root, figures).items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            (root / path).write_bytes(content)
        else:
            (root / path).write_text(content)
        written.append(path)
    return written


def check_pages(root: str | Path = ".") -> list[str]:
    """The committed text files (pages, README blocks, the catalogue CSV) that differ from what
    :func:`write_pages` would write now (figures are not compared: they depend on matplotlib's version)."""
    root = Path(root)
    problems = []
    for path, content in render(root, figures=False).items():
        if isinstance(content, bytes):
            continue
        if not (root / path).exists():
            problems.append(f"{path}: missing; run adapt-bench results pages")
        elif (root / path).read_text() != content:
            problems.append(f"{path}: differs from what the committed summaries give; run adapt-bench results pages")
    return problems


BLOCK = re.compile(r"(<!-- results:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /results -->)", re.S)


def fill_blocks(text: str, blocks: dict[str, str]) -> str:
    """``text`` with the body of every ``<!-- results:NAME -->`` block replaced by ``blocks[NAME]``."""

    def fill(match: re.Match[str]) -> str:
        name = match.group("name")
        return match.group(0) if name not in blocks else f"{match.group(1)}{blocks[name]}{match.group(4)}"

    return BLOCK.sub(fill, text)


def _index(pages: list[Page]) -> str:
    lines = ["# Results", "",
             "Every table and figure here is regenerated from the run summaries committed in "
             "`docs/results/data/` by `adapt-bench results pages` (a test fails when a page differs from what "
             "they give, or when a committed run is not what the library runs now). Each page says what made "
             "its runs. To add runs: run the suite, then `adapt-bench results export RESULTS --name NAME` and "
             "`adapt-bench results pages`.", "", "| page | what | made by |", "|---|---|---|"]  # fmt: skip
    lines += [f"| [{p.title}]({p.name}.md) | `{p.name}` | `{p.command}` |" for p in pages]
    return "\n".join(lines) + "\n"


def _table(frame: pd.DataFrame, caption: str) -> str:
    """A Markdown table; a wide one (more than 7 columns) is transposed so that it reads down the page."""
    if frame.shape[1] > 7 and frame.shape[0] < frame.shape[1]:
        shown = frame.T
        shown.index.name = frame.columns.name or "task"
        shown.columns.name = None
        return to_markdown(shown, caption)
    return to_markdown(frame, caption)


def _suite_folder(name: str, folder: Path) -> tuple[Path, Any]:
    """A results-like folder holding the suite's card and published numbers, for the report to read."""

    suite = load_suite(name)
    results = folder / "results"
    results.mkdir()
    (results / "suite.json").write_text(json.dumps(suite_card(suite)))
    if suite.published:
        (results / "published.json").write_text(json.dumps(suite.published))
    return results, suite


def _sweep_page(page: Page, root: Path, folder: Path, figures: bool) -> tuple[str, Report]:
    runs, checkpoints = load_summary(page.name, root)
    results, suite = _suite_folder(page.name, folder)
    report = build_report(runs, checkpoints, results, folder, figures)
    tuning = ("The library's defaults **were tuned on this suite** "
              f"({suite.tuning_note}): its numbers are no evidence for them." if suite.defaults_tuned else
              "No default of the library was tuned on this suite.")  # fmt: skip
    failed = int((runs["status"] != "ok").sum())
    parts = [f"# {page.title}", "", f"{suite.description}. {tuning}", "",
             f"{provenance_line(runs)} {len(runs)} runs ({failed} failed). Made with `{page.command}`; "
             f"this page: `adapt-bench results pages` from `docs/results/data/{page.name}.*.csv`.", "",
             "## Target accuracy", "", _table(report.table, report.caption)]  # fmt: skip
    for title, table, caption in _sweep_sections(report, folder):
        parts += [f"## {title}", "", table if caption is None else _table(table, caption)]
    # which figures the page shows follows from the report, so that a page rendered without drawing
    # them (--check) is the same text
    shown = {"heatmap.png": not report.table.empty, "gain.png": report.transfer is not None,
             "critical_difference.png": _many(report.ranks), "validators.png": report.quality is not None,
             "estimation.png": report.estimation is not None,
             "stream.png": not stream_points(runs, checkpoints).empty}  # fmt: skip
    parts += [f"![{PAGE_FIGURES[name]}]({page.name}/{name})\n" for name, show in shown.items() if show]
    for png in folder.glob("*.png"):
        if not shown.get(png.name):
            png.unlink()  # bars and curves stay in the report, not on the page
    return "\n".join(parts).rstrip() + "\n", report


#: The report's figures a sweep's page shows, with their alt text.
PAGE_FIGURES = {"heatmap.png": "accuracy per task", "gain.png": "gain over SourceOnly",
                "critical_difference.png": "average ranks", "validators.png": "validator quality",
                "estimation.png": "estimated against true target accuracy",
                "stream.png": "online accuracy along the stream"}  # fmt: skip


def _many(table: pd.DataFrame | None) -> bool:
    """Whether a per-method table has enough methods to earn its own section (the catalogue's)."""
    return table is not None and len(table) > 8


def _sweep_sections(report: Report, folder: Path) -> list[tuple[str, Any, str | None]]:
    sections: list[tuple[str, Any, str | None]] = []
    if report.transfer is not None:
        sections.append(("Gain over SourceOnly and negative transfer", report.transfer, report.transfer_caption))
    if _many(report.methods):
        methods = report.methods.drop(columns=["paper", "adaptation term"]).set_index("method")
        sections.append(("Methods by family", methods, report.methods_caption))
    if _many(report.ranks):
        sections.append(("Average ranks", report.ranks, report.ranks_caption))
    if report.backends is not None:
        sections.append(("Both implementations, paired", report.backends, report.backends_caption))
    if report.study is not None and not report.study.empty:
        percent = ("oracle gain recovered", "negative transfer")
        study = report.study.map(lambda v: "n/a" if pd.isna(v) else f"{v:+.2f}").assign(
            **{c: report.study[c].map(lambda v: "n/a" if pd.isna(v) else f"{100 * v:.0f}%") for c in percent}
        )
        sections.append(("Label-free checkpoint selection", study, report.study_caption))
        sections.append(("Accuracy under each selection rule", report.selection_table, report.selection_caption))
    if report.quality is not None:
        quality = report.quality.map(lambda v: "n/a" if pd.isna(v) else f"{v:.3f}")
        sections.append(("Validator quality, pooled over methods", quality, report.quality_caption))
        by_method = folder / "validators_by_method.md"
        if by_method.exists():
            sections.append(("Validator quality, per method", by_method.read_text(), None))
    if report.estimation is not None:
        sections.append(("Label-free accuracy estimates", report.estimation, report.estimation_caption))
    if report.guard is not None:
        sections.append(("The guard against negative transfer", report.guard, report.guard_caption))
    if report.stream is not None:
        sections.append(("Accuracy round after round", report.stream, report.stream_caption))
    if report.compute is not None:
        sections.append(("Compute charged", report.compute, report.compute_caption))
    if report.published is not None:
        sections.append(("Published numbers", *report.published))
    return sections


def _readme_block(report: Report) -> str:
    """The README's copy of a page's headline: its table, and the gain over SourceOnly."""
    text = to_markdown(report.table, report.caption)
    if report.transfer is not None:
        text += "\n" + to_markdown(report.transfer, report.transfer_caption)
    return text


def _study_page(page: Page, root: Path, folder: Path, figures: bool) -> str:
    data = root / DATA
    runs = pd.read_csv(data / f"{page.name}.runs.csv", dtype={"shots": str})
    settings = StudySettings(**{k: v for k, v in json.loads((data / f"{page.name}.study.json").read_text()).items()
                                if k != "study"})  # fmt: skip
    parts = [f"# {page.title}", "", study_description(page.name, settings), "", f"{provenance_line(runs)} "
             f"{len(runs)} runs. Made with `{page.command}`; this page: `adapt-bench results pages` from "
             f"`docs/results/data/{page.name}.*`.", ""]  # fmt: skip
    if page.name == "data-efficiency":
        summary = summarize_study(runs)
        for task, part in summary.groupby("task", sort=False):
            cells = part.assign(cell=[f"{m:.1f} ± {c:.1f}" if not np.isnan(c) else f"{m:.1f}"
                                      for m, c in zip(part["mean"], part["ci95"])])  # fmt: skip
            table = cells.pivot(index="approach", columns="shots", values="cell")
            table = table[[str(s) for s in settings.shots if str(s) in table.columns]].fillna("-")
            parts += [f"## {task}", "", to_markdown(table, "Target test accuracy (%), mean ± 95% CI over seeds, by "
                                                    "labeled target examples per class")]  # fmt: skip
        needed = labels_needed(summary).set_index(["task", "approach"])
        parts += ["## Labels needed", "", to_markdown(needed.astype(object).where(needed.notna(), "not reached"),
                                                      LABELS_NEEDED_CAPTION)]  # fmt: skip
        if figures:
            data_efficiency_figure(
                summary, settings.shots, folder / "data_efficiency.png", labels=APPROACH_LABELS, margin=MARGIN
            )
        parts += [f"![accuracy against labeled target examples]({page.name}/data_efficiency.png)", ""]
    else:
        curves = pd.read_csv(data / f"{page.name}.curves.csv")
        table = time_to_accuracy(curves).set_index(["task", "start"])
        parts += ["## Time to the goal", "", to_markdown(table.astype(object).where(table.notna(), "not reached"),
                                                         TIME_CAPTION)]  # fmt: skip
        if figures:
            training_time_figure(curves, table.reset_index(), folder / "training_time.png")
        parts += [f"![accuracy against training time]({page.name}/training_time.png)", ""]
    return "\n".join(parts).rstrip() + "\n"


LABELS_NEEDED_CAPTION = (
    "Fewest labeled target examples at which an approach's mean accuracy reaches the goal (TargetOnly with "
    "every label, minus 2 points), how many fewer than TargetOnly needs, and the accuracy there with its "
    "95% CI over seeds; 'lower bound reaches the goal' says whether the interval, not just the mean, clears it"
)
TIME_CAPTION = (
    "First step where the seed-mean curve reaches the goal (scratch's final accuracy minus 2 points), its "
    "training seconds (the probes that draw the curve are taken off the clock) and the seconds with the "
    "source model's own training counted"
)


def study_description(name: str, settings: Any) -> str:
    """What a study trains, in words, from its settings (learning rates included: they differ)."""
    tasks = ", ".join(f"`{t}`" for t in settings.tasks)
    backbone = settings.backbone.get("kind")
    if name == "data-efficiency":
        return (f"Tasks {tasks} (inductive split: the labeled examples come from the target's training split, "
                f"the scored test split is disjoint), backbone `{backbone}`, {settings.seeds} seeds. TargetOnly, "
                f"and the SourceOnly and DANN source models, train {settings.steps} steps from scratch at lr "
                f"{settings.lr}; FineTune fine-tunes a source model {settings.finetune_steps} steps at lr "
                f"{settings.finetune_lr}; MME trains {settings.steps} steps at lr {settings.mme_lr} (its authors' "
                "base lr with `fit`'s other defaults, not their optimizer: their preset assumes a pretrained "
                "ResNet). No default of the library was tuned on these tasks.")  # fmt: skip
    return (f"Tasks {tasks} (inductive split), backbone `{backbone}`, {settings.seeds} seeds, every target label: "
            f"TargetOnly from scratch, {settings.steps} steps at lr {settings.lr}, against FineTune from the "
            f"SourceOnly model (itself {settings.steps} steps at lr {settings.lr}), {settings.finetune_steps} steps "
            f"at lr {settings.finetune_lr}: the two start from different weights, so each has its own learning "
            f"rate. The test split is scored every {settings.eval_every} steps to draw the curves. No default of "
            "the library was tuned on these tasks.")  # fmt: skip
