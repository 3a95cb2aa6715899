"""Two studies of what a source domain is worth when the target has labels too: how many target labels
it saves (``adapt-bench study data-efficiency``) and how much training time (``study training-time``).

Both train on the labeled target examples of an *inductive* split and score on its disjoint test split:
the target labels used for scoring never reach training, and what is scored is the same set at every
number of labels. Every run is a record under ``<out>/runs`` (a rerun skips finished ones), source
models are cached under ``<out>/source-models``, and the tables and figures are written at the end.
Records and cached models are keyed by what runs (:meth:`Study.approach_config`: the settings, each
method's hyperparameters with their defaults, the backbone's and the data's options, the revisions):
a record made with other defaults or code is stale, moved to ``<out>/runs/stale/`` and redone.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from .._version import RESULTS_REVISION
from ..data import Task, few_shot_split, task
from ..methods import DANN, MME, Adapter, FineTune, SourceOnly, TargetOnly
from ..train.engine import seed_everything
from .backbones import build_backbone, resolve_backbone
from .executors import local_results
from .identity import digest, resolve_data
from .records import write_record
from .report.common import ci95
from .report.study_figures import data_efficiency_figure, training_time_figure
from .runner import provenance

#: Labeled target examples per class along the data-efficiency curve ('all': the whole training split).
SHOTS: tuple[int | str, ...] = (0, 1, 3, 5, 10, 25, "all")
#: The approaches of the data-efficiency study, in the order of the figure's legend.
APPROACHES = ("target_only", "finetune", "dann+finetune", "mme")
APPROACH_LABELS = {
    "target_only": "TargetOnly (target labels alone)",
    "finetune": "FineTune (source model, then target labels)",
    "dann+finetune": "DANN, then FineTune",
    "mme": "MME (source + target labels + unlabeled target)",
}
#: The offline image tasks (a small CNN): digits to MNIST-M-style blends, and to blurred digits.
DEFAULT_TASKS = ("optdigits:optdigits:optdigits-m", "optdigits-shifts:clean:blur")
#: How far below TargetOnly-with-every-label an approach may stay and still count as reaching it.
MARGIN = 2.0


@dataclass
class StudySettings:
    """What a study trains; saved in ``<out>/study.json`` so that a rerun continues the same study."""

    tasks: list[str] = field(default_factory=lambda: list(DEFAULT_TASKS))
    seeds: int = 3
    steps: int = 500
    finetune_steps: int = 250
    lr: float = 0.05
    finetune_lr: float = 0.01
    #: MME trains at its authors' base learning rate (``main.py``'s 0.01; their backbone runs at 0.1x of it
    #: with their own schedule, see ``MME``'s ``"official"`` preset, made for pretrained ResNets, not for a
    #: network trained from scratch as here). At 0.05 its cosine classifier (logits scaled by 1/0.05) does
    #: not even fit the source (the source loss stays near 0.5 without the entropy term).
    mme_lr: float = 0.01
    batch_size: int = 64
    backbone: dict[str, Any] = field(default_factory=lambda: {"kind": "convnet"})
    shots: list[int | str] = field(default_factory=lambda: list(SHOTS))
    eval_every: int = 25
    data_root: str | None = None
    device: str = "auto"
    download: bool = False

    def fingerprint(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("data_root", "device", "download")}


def parse_task(spec: str) -> tuple[str, str, str]:
    """``"benchmark:source:target"`` -> its three names."""
    parts = spec.split(":")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"a study task is 'benchmark:source:target' (for example {DEFAULT_TASKS[0]}), got {spec!r}")
    return parts[0], parts[1], parts[2]


#: The classes each approach trains (its source model's first), for its configuration.
APPROACH_CLASSES: dict[str, tuple[type[Adapter], ...]] = {
    "target_only": (TargetOnly,), "finetune": (SourceOnly, FineTune), "dann+finetune": (DANN, FineTune),
    "mme": (MME,), "scratch": (TargetOnly,), "source": (SourceOnly, FineTune), "source_only": (SourceOnly,),
    "dann": (DANN,),
}  # fmt: skip


def _class_config(cls: type[Adapter]) -> dict[str, Any]:
    return {
        "class": cls.__name__,
        "hparams": cls.hyperparameter_defaults(),
        "revision": cls.revision,
        "fit_defaults": cls.fit_defaults,
    }


class Study:
    """One study's folder: settings, records, cached source models, and the shared training calls."""

    def __init__(
        self, name: str, out: str | Path, settings: StudySettings, verbose: bool | None = None, check: bool = True
    ) -> None:
        self.name, self.out, self.settings, self.verbose = name, Path(out), settings, verbose
        self._tasks: dict[str, Task] = {}
        if check:
            for spec in settings.tasks:  # a task that cannot load fails before the folder is claimed
                self.task(spec)
            self._check_folder()

    def _check_folder(self) -> None:
        """A folder holds one study with one set of settings: other settings would mix their results."""
        saved = self.out / "study.json"
        mine = {"study": self.name, **self.settings.fingerprint()}
        if saved.exists() and json.loads(saved.read_text()) != mine:
            raise ValueError(f"{self.out} holds a study with other settings ({saved}); give another --out "
                             f"(its finished runs are kept)")  # fmt: skip
        self.out.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(mine, indent=1))

    def task(self, spec: str) -> Task:
        """The task under the inductive protocol (a disjoint test split; the same for every seed)."""
        if spec not in self._tasks:
            benchmark, source, target = parse_task(spec)
            self._tasks[spec] = task(benchmark, source, target, self.settings.data_root, protocol="inductive",
                                     download=self.settings.download)  # fmt: skip
        return self._tasks[spec]

    def approach_config(self, approach: str) -> dict[str, Any]:
        """What an approach's runs depend on besides task, shots and seed: the study's settings, the
        hyperparameters (defaults included), training defaults and revisions of the classes it trains,
        the backbone's options and the library's revision."""
        return {
            "settings": self.settings.fingerprint(),
            "backbone": resolve_backbone(self.settings.backbone),
            "classes": [_class_config(cls) for cls in APPROACH_CLASSES[approach]],
            "data": {spec: resolve_data(parse_task(spec)[0], {}) for spec in self.settings.tasks},
            "library": RESULTS_REVISION,
        }

    def config_id(self, approach: str) -> str:
        return digest(self.approach_config(approach))

    def new_model(self, cls: type[Adapter], t: Task, seed: int, **hparams: Any) -> Adapter:
        seed_everything(seed)  # the backbone's initialization is the seed's
        return cls(build_backbone(self.settings.backbone, t.input_shape), t.num_classes, **hparams)

    def fit(self, model: Adapter, seed: int, finetune: bool = False, **data: Any) -> float:
        """Train ``model`` on ``data`` (fit's arguments: the data, callbacks, steps); the seconds it took."""
        s = self.settings
        lr = s.finetune_lr if finetune else s.mme_lr if isinstance(model, MME) else s.lr
        options = {"steps": s.finetune_steps if finetune else s.steps, "lr": lr, "batch_size": s.batch_size,
                   "seed": seed, "device": s.device, "verbose": False, **data}  # fmt: skip
        start = time.perf_counter()
        model.fit(**options)
        return time.perf_counter() - start

    def source_model(self, spec: str, method: str, seed: int) -> tuple[Adapter, float]:
        """SourceOnly or DANN trained on the task (cached); the model and its training seconds."""
        slug = digest({"task": spec, "method": method, "seed": seed, "config": self.approach_config(method)})[:12]
        path = self.out / "source-models" / f"{method}-{slug}.pt"
        info = path.with_suffix(".json")
        if path.exists() and info.exists():
            return Adapter.load(path), float(json.loads(info.read_text())["train_seconds"])
        t = self.task(spec)
        model = self.new_model(SourceOnly if method == "source_only" else DANN, t, seed)
        seconds = self.fit(model, seed, source=t.source_train, target=t.target_train)
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(path)
        info.write_text(json.dumps({"train_seconds": seconds}))
        return model, seconds

    def _current(self, key: tuple[Any, ...]) -> bool:
        """Whether the record of ``key`` was made with what this library runs for it now."""
        try:
            return json.loads(self.record_path(key).read_text()).get("config_id") == self.config_id(key[1])
        except (OSError, ValueError):
            return False

    def record_path(self, key: tuple[Any, ...]) -> Path:
        return self.out / "runs" / ("__".join(str(k).replace(":", "-") for k in key) + ".json")

    def run_all(self, keys: list[tuple[Any, ...]], jobs: int = 1) -> pd.DataFrame:
        """Run every key not yet recorded, in ``jobs`` processes (one task and seed at a time each, so
        that a source model is trained once); all records as a DataFrame."""
        groups: dict[tuple[Any, Any], list[tuple[Any, ...]]] = {}
        for key in keys:
            if self.record_path(key).exists() and not self._current(key):
                stale = self.out / "runs" / "stale"  # made with other defaults or code: kept, and redone
                stale.mkdir(parents=True, exist_ok=True)
                os.replace(self.record_path(key), stale / self.record_path(key).name)
            if not self.record_path(key).exists():
                groups.setdefault((key[0], key[-1]), []).append(key)
        work = [(self.name, str(self.out), self.settings, group) for group in groups.values()]
        quiet = None if self.verbose is None else not self.verbose  # None: a bar on a terminal only
        with tqdm(total=sum(len(g) for g in groups.values()), desc=f"study {self.name}", unit="run",
                  disable=quiet) as bar:  # fmt: skip
            for (_, _, _, group), _ in local_results(work, jobs, self.settings.device, _run_group, False):
                bar.update(len(group))
        records = [json.loads(self.record_path(k).read_text()) for k in keys]
        # provenance flattened to columns: versions.adapt, commit.sha, machine.cpus, ...
        return pd.json_normalize([r for r in records if not r.get("skipped")], max_level=1)


def _run_group(work: tuple[str, str, StudySettings, list[tuple[Any, ...]]], device: str, show: bool) -> str:
    """Run one task and seed's keys of a study and write their records (in whichever process)."""
    name, out, settings, keys = work
    study = Study(name, out, settings, check=False)
    run = _data_efficiency_run if name == "data-efficiency" else _training_time_run
    for key in keys:
        started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        result = run(study, *key) or {"skipped": True}
        write_record(study.record_path(key), {"key": list(key), "config_id": study.config_id(key[1]),
                                              **provenance(device), "started": started, **result})  # fmt: skip
    return "ok"


# ----------------------------------------------------------------------------- data efficiency
def _data_efficiency_run(study: Study, spec: str, approach: str, shots: int | str, seed: int) -> dict[str, Any] | None:
    """One point of the curve: ``approach`` with ``shots`` labeled target examples per class."""
    t = study.task(spec)
    split = t if shots == 0 else few_shot_split(t, shots, seed)
    labeled = split.target_labeled
    if approach == "target_only":
        if labeled is None:
            return None  # no labels, nothing to train on
        model = study.new_model(TargetOnly, t, seed)
        seconds = study.fit(model, seed, target_labeled=labeled)
    elif approach in ("finetune", "dann+finetune"):
        model, seconds = study.source_model(spec, "source_only" if approach == "finetune" else "dann", seed)
        if labeled is not None:
            model = FineTune.from_source(model)
            seconds += study.fit(model, seed, finetune=True, target_labeled=labeled)
    else:
        model = study.new_model(MME, t, seed)
        seconds = study.fit(model, seed, source=t.source_train, target=split.target_train, target_labeled=labeled)
    return {"task": spec, "approach": approach, "shots": str(shots), "seed": seed,
            "labels": 0 if labeled is None else len(labeled), "classes": t.num_classes,
            "accuracy": 100 * model.score(split.target_test), "train_seconds": seconds}  # fmt: skip


def labels_needed(summary: pd.DataFrame, margin: float = MARGIN) -> pd.DataFrame:
    """Per task and approach: the fewest target labels whose mean accuracy reaches TargetOnly-with-every-
    label minus ``margin`` points, how many fewer than TargetOnly needs ('labels saved'), the accuracy there
    (mean ± 95 % CI over seeds, when ``summary`` has ``ci95``) and whether the interval's lower bound
    reaches the goal too (a mean that barely clears it over 3 seeds is not a saving to rely on)."""
    rows = []
    for spec, part in summary.groupby("task", sort=False):
        reference = part[(part.approach == "target_only") & (part.shots == "all")]["mean"]
        if reference.empty:
            continue
        goal = float(reference.iloc[0]) - margin
        needed = {}
        for approach, curve in part.groupby("approach", sort=False):
            reached = curve[curve["mean"] >= goal].sort_values("labels")
            needed[approach] = reached.iloc[0] if not reached.empty else None
        base = needed.get("target_only")
        for approach, point in needed.items():
            labels = None if point is None else int(point["labels"])
            saved = int(base["labels"]) - labels if base is not None and labels is not None else None
            ci = float(point["ci95"]) if point is not None and "ci95" in point and pd.notna(point["ci95"]) else None
            rows.append({"task": spec, "approach": approach, "goal (%)": round(goal, 1), "labels needed": labels,
                         "labels saved vs TargetOnly": saved,
                         "accuracy there (%)": None if point is None else (
                             f"{point['mean']:.1f} ± {ci:.1f}" if ci is not None else f"{point['mean']:.1f}"),
                         "lower bound reaches the goal": None if point is None or ci is None else
                         ("yes" if point["mean"] - ci >= goal else "no")})  # fmt: skip
    # whole numbers, and <NA> where the goal was not reached
    columns = ["task", "approach", "goal (%)", "labels needed", "labels saved vs TargetOnly", "accuracy there (%)",
               "lower bound reaches the goal"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns).astype({"labels needed": "Int64", "labels saved vs TargetOnly": "Int64"})


def summarize_study(runs: pd.DataFrame) -> pd.DataFrame:
    """The data-efficiency runs per task, approach and shots: mean, count, 95 % CI, labels and seconds."""
    return _summarize(runs.astype({"shots": str}), ["task", "approach", "shots"])


def _summarize(runs: pd.DataFrame, by: list[str], value: str = "accuracy") -> pd.DataFrame:
    grouped = runs.groupby(by, sort=False)
    out = grouped[value].agg(["mean", "count"]).join(grouped[value].agg(ci95).rename("ci95"))
    extra = [c for c in ("labels", "train_seconds") if c in runs and c != value]
    return out.join(grouped[extra].mean()).reset_index()


def data_efficiency(out: str | Path, settings: StudySettings | None = None, verbose: bool | None = None,
                    figures: bool = True, jobs: int = 1) -> dict[str, Any]:  # fmt: skip
    """Run (or finish) the data-efficiency study; its runs, summary, labels-needed table and figure."""
    settings = settings or StudySettings()
    study = Study("data-efficiency", out, settings, verbose)
    keys = [(spec, approach, shots, seed) for spec in settings.tasks for seed in range(settings.seeds)
            for shots in settings.shots for approach in APPROACHES]  # fmt: skip
    runs = study.run_all(keys, jobs)
    summary = summarize_study(runs)
    needed = labels_needed(summary)
    runs.to_csv(study.out / "runs.csv", index=False)
    summary.round(2).to_csv(study.out / "summary.csv", index=False)
    needed.to_csv(study.out / "labels_needed.csv", index=False)
    result = {"runs": runs, "summary": summary, "labels_needed": needed, "out": study.out}
    if figures:
        result["figure"] = data_efficiency_figure(
            summary, settings.shots, study.out / "data_efficiency.png", labels=APPROACH_LABELS, margin=MARGIN
        )
    return result


# ----------------------------------------------------------------------------- training time
class AccuracyProbe:
    """A callback scoring the target test split every ``every`` steps, for the training-time curves
    (target labels draw the curve; they never reach training). It times itself, so that the curve's
    seconds are training seconds."""

    def __init__(self, data: Any, every: int) -> None:
        self.data, self.every = data, every
        self.points: list[tuple[int, float]] = []
        self.probe_seconds: list[float] = []

    def __call__(self, step: int, model: Any) -> None:
        start = time.perf_counter()
        self.points.append((step, 100 * model.score(self.data)))
        self.probe_seconds.append(time.perf_counter() - start)


def _training_time_run(study: Study, spec: str, start: str, seed: int) -> dict[str, Any]:
    """One learning curve on every target label: from scratch (TargetOnly) or from the source model."""
    t = study.task(spec)
    split = few_shot_split(t, "all")
    probe = AccuracyProbe(split.target_test, study.settings.eval_every)
    source_seconds = 0.0
    if start == "scratch":
        model = study.new_model(TargetOnly, t, seed)
    else:
        source, source_seconds = study.source_model(spec, "source_only", seed)
        model = FineTune.from_source(source)
    # the same budget for both starts: the curves show where each gets, and when
    study.fit(
        model,
        seed,
        finetune=start == "source",
        target_labeled=split.target_labeled,
        callbacks=[probe],
        log_every=probe.every,
    )
    history = model.history_
    assert history is not None
    # the engine's clock runs on through the probes: take each probe's time off the points after it
    spent = pd.Series([0.0, *probe.probe_seconds[:-1]]).cumsum().tolist()
    seconds = (history.set_index("step")["seconds"].loc[[s for s, _ in probe.points]] - spent).tolist()
    curve = [{"step": s, "seconds": sec, "accuracy": a} for (s, a), sec in zip(probe.points, seconds)]
    return {"task": spec, "start": start, "seed": seed, "source_seconds": source_seconds, "curve": curve}


def time_to_accuracy(curves: pd.DataFrame, margin: float = MARGIN) -> pd.DataFrame:
    """Per task and start: the first step (and its training seconds, and seconds with the source model's
    training included) where the seed-mean curve reaches the scratch run's final accuracy minus ``margin``."""
    rows = []
    for spec, part in curves.groupby("task", sort=False):
        mean = part.groupby(["start", "step"], sort=False)[["accuracy", "seconds", "source_seconds"]].mean()
        scratch = mean.loc["scratch"]
        goal = float(scratch["accuracy"].iloc[-1]) - margin
        for start in mean.index.get_level_values(0).unique():
            curve = mean.loc[start]
            reached = curve[curve["accuracy"] >= goal]
            first = reached.iloc[0] if not reached.empty else None
            rows.append({"task": spec, "start": start, "goal (%)": round(goal, 1),
                         "final accuracy (%)": round(float(curve["accuracy"].iloc[-1]), 1),
                         "steps to goal": int(reached.index[0]) if first is not None else None,
                         "seconds to goal": round(float(first["seconds"]), 2) if first is not None else None,
                         "seconds incl. source training": round(float(first["seconds"] + first["source_seconds"]), 2)
                         if first is not None else None})  # fmt: skip
    return pd.DataFrame(rows)


def training_time(out: str | Path, settings: StudySettings | None = None, verbose: bool | None = None,
                  figures: bool = True, jobs: int = 1) -> dict[str, Any]:  # fmt: skip
    """Run (or finish) the training-time study; its curves, time-to-accuracy table and figure."""
    settings = settings or StudySettings(steps=1000, finetune_steps=1000)
    study = Study("training-time", out, settings, verbose)
    keys = [(spec, start, seed) for spec in settings.tasks for seed in range(settings.seeds)
            for start in ("scratch", "source")]  # fmt: skip
    records = study.run_all(keys, jobs)
    curves = pd.DataFrame([{**{k: r[k] for k in ("task", "start", "seed", "source_seconds")}, **point}
                           for r in records.to_dict("records") for point in r["curve"]])  # fmt: skip
    table = time_to_accuracy(curves)
    curves.to_csv(study.out / "curves.csv", index=False)
    table.to_csv(study.out / "time_to_accuracy.csv", index=False)
    result = {"curves": curves, "time_to_accuracy": table, "out": study.out}
    if figures:
        result["figure"] = training_time_figure(curves, table, study.out / "training_time.png")
    return result
