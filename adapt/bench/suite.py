"""Suite files: which methods, tasks, seeds and training protocol a sweep runs.

A suite is a TOML file in ``benchmarks/suites/``::

    name = "quick"
    description = "..."
    seeds = 3
    eval_every = 100                      # target-accuracy curve points (monitoring only)
    budgets = [500, 3000]                 # optional: run every task at each of these step counts
    checkpoints = 10                      # optional, instead of eval_every: evenly spaced per run

    [train]                               # TrainConfig fields, defaults for every run
    steps = 1000
    lr = 0.05

    [backbones.mlp]
    kind = "mlp"
    hidden = [64]

    [[tasks]]
    benchmark = "moons"
    source = "source"
    target = "rotated"
    backbone = "mlp"
    train = { steps = 500 }               # optional per-task overrides
    data = { angle = 35 }                 # options of the task's generator
    model = { bottleneck_dim = 256 }      # options shared by every method on this task

    [methods.dann]                        # one table per method: its hyperparameters
    discriminator_hidden = [64]
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.registry import BENCHMARKS
from ..methods import aliases, available, hyperparameters
from ..methods import get as get_method
from ..train.engine import TrainConfig
from .backbones import BACKBONE_OPTIONS

TOP_KEYS = {
    "name",
    "description",
    "seeds",
    "eval_every",
    "checkpoints",
    "budgets",
    "split",
    "metric",
    "train",
    "backbones",
    "tasks",
    "methods",
    "data_root",
    "validators",
    "select_by",
    "source_holdout",
    "search",
    "search_draws",
    "search_seed",
    "published",
}
SEARCH_KINDS = ("log_uniform", "uniform", "choice")
METRICS = ("accuracy", "mean_class_accuracy")
TASK_KEYS = {"benchmark", "source", "target", "backbone", "train", "data", "model", "protocol"}
MODEL_KEYS = {"feature_dim", "bottleneck_dim"}
# Fields a suite may not set: they belong to the command line or the harness.
TRAIN_RESERVED = {"seed", "device", "callbacks", "verbose"}


class SuiteError(ValueError):
    """A suite file is invalid; the message names the file, the key and the allowed values."""


def _suite_dirs() -> list[Path]:
    here = Path(__file__).resolve()
    return [here.parents[2] / "benchmarks" / "suites", Path(sys.prefix) / "share" / "adapt" / "suites"]


def available_suites() -> dict[str, Path]:
    """Suite name -> file, from the repository's ``benchmarks/suites`` (or the installed copy)."""
    found: dict[str, Path] = {}
    for folder in _suite_dirs():
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                found.setdefault(path.stem, path)
    return found


def resolve_suite(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.exists():
            raise SuiteError(f"suite file {path} does not exist")
        return path
    suites = available_suites()
    if name_or_path not in suites:
        raise SuiteError(f"unknown suite {name_or_path!r}; available: {', '.join(suites) or 'none found'}")
    return suites[name_or_path]


@dataclass
class TaskSpec:
    benchmark: str
    source: str
    target: str
    backbone: dict[str, Any]
    backbone_name: str
    train: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    protocol: str | None = None

    @property
    def name(self) -> str:
        return f"{self.benchmark}/{self.source}->{self.target}"


@dataclass
class Suite:
    name: str
    path: Path
    description: str
    seeds: int
    eval_every: int
    train: dict[str, Any]
    tasks: list[TaskSpec]
    methods: dict[str, dict[str, Any]]
    data_root: str | None = None
    metric: str = "accuracy"
    validators: list[str] = field(default_factory=list)
    select_by: str | None = None
    source_holdout: float = 0.0
    search: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    search_draws: int = 1
    search_seed: int = 0
    #: Published accuracies (%) to print beside ours: task name or "avg" -> method -> number, plus "source".
    published: dict[str, Any] = field(default_factory=dict)
    #: Training lengths (steps) every task is run at; empty: the suite's ``train.steps`` only.
    budgets: list[int] = field(default_factory=list)
    #: Evenly spaced checkpoints per run (overrides ``eval_every``; 0: use ``eval_every``).
    checkpoints: int = 0
    #: 'tuning' or 'confirmation' for suites of a tuning/confirmation pair (documentation only).
    split: str | None = None

    def eval_every_for(self, steps: int) -> int:
        """Steps between checkpoints for a run of ``steps`` steps."""
        return max(1, steps // self.checkpoints) if self.checkpoints else self.eval_every


def _fail(path: Path, key: str, problem: str, allowed: Any = None) -> SuiteError:
    text = f"{path}: {key}: {problem}"
    if allowed is not None:
        text += f"; allowed: {', '.join(map(str, sorted(allowed)))}"
    return SuiteError(text)


def _check_keys(path: Path, where: str, table: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise _fail(path, where, f"must be a table, got {type(table).__name__}")
    for key in table:
        if key not in allowed:
            raise _fail(path, f"{where}.{key}" if where else key, "unknown key", allowed)
    return table


def _check_type(path: Path, key: str, value: Any, types: type | tuple[type, ...], what: str) -> None:
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise _fail(path, key, f"must be {what}, got a boolean")
    if not isinstance(value, types):
        raise _fail(path, key, f"must be {what}, got {type(value).__name__} {value!r}")


def _check_train(path: Path, where: str, table: Any) -> dict[str, Any]:
    allowed = set(TrainConfig.__dataclass_fields__) - TRAIN_RESERVED
    table = _check_keys(path, where, table, allowed)
    types = {"steps": int, "batch_size": int, "log_every": int, "num_workers": int, "lr": (int, float),
             "momentum": (int, float), "weight_decay": (int, float), "backbone_lr_mult": (int, float),
             "grad_clip": (int, float), "nesterov": bool, "compile": bool, "channels_last": bool,
             "optimizer": str, "lr_schedule": str, "amp": str}  # fmt: skip
    for key, value in table.items():
        _check_type(path, f"{where}.{key}", value, types[key], "a string" if types[key] is str else "a number")
    try:
        TrainConfig(**table)
    except ValueError as exc:
        raise _fail(path, where, str(exc)) from exc
    return table


def load_suite(name_or_path: str) -> Suite:
    """Read and fully validate a suite before anything runs."""
    path = resolve_suite(name_or_path)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{path}: not valid TOML: {exc}") from exc
    _check_keys(path, "", raw, TOP_KEYS)
    for key in ("tasks", "methods"):
        if key not in raw:
            raise _fail(path, key, "missing")
    seeds = raw.get("seeds", 3)
    _check_type(path, "seeds", seeds, int, "a positive integer")
    eval_every = raw.get("eval_every", 0)
    _check_type(path, "eval_every", eval_every, int, "a non-negative integer")
    checkpoints = raw.get("checkpoints", 0)
    _check_type(path, "checkpoints", checkpoints, int, "a non-negative integer")
    if checkpoints and eval_every:
        raise _fail(path, "checkpoints", "set either checkpoints or eval_every, not both")
    budgets = raw.get("budgets", [])
    positive = all(isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in budgets or [0])
    if not isinstance(budgets, list) or (budgets and not positive):
        raise _fail(path, "budgets", f"must be a list of positive step counts, got {budgets!r}")
    if len(set(budgets)) != len(budgets):
        raise _fail(path, "budgets", f"lists a step count twice: {budgets}")
    split = raw.get("split")
    if split not in (None, "tuning", "confirmation"):
        raise _fail(path, "split", f"unknown split {split!r}", ["confirmation", "tuning"])
    train = _check_train(path, "train", raw.get("train", {}))
    metric = raw.get("metric", "accuracy")
    if metric not in METRICS:
        raise _fail(path, "metric", f"unknown metric {metric!r}", METRICS)

    backbones = _check_keys(path, "backbones", raw.get("backbones", {}), set(raw.get("backbones", {})))
    for name, spec in backbones.items():
        spec = _check_keys(path, f"backbones.{name}", spec, {"kind"} | set().union(*BACKBONE_OPTIONS.values()))
        if spec.get("kind") not in BACKBONE_OPTIONS:
            raise _fail(path, f"backbones.{name}.kind", f"unknown backbone kind {spec.get('kind')!r}", BACKBONE_OPTIONS)
        _check_keys(path, f"backbones.{name}", spec, {"kind"} | BACKBONE_OPTIONS[spec["kind"]])

    if not isinstance(raw["tasks"], list) or not raw["tasks"]:
        raise _fail(path, "tasks", "must be a non-empty array of tables ([[tasks]])")
    tasks = []
    for i, t in enumerate(raw["tasks"]):
        where = f"tasks[{i}]"
        _check_keys(path, where, t, TASK_KEYS)
        for key in ("benchmark", "source", "target", "backbone"):
            if key not in t:
                raise _fail(path, f"{where}.{key}", "missing")
        if t["benchmark"] not in BENCHMARKS:
            raise _fail(path, f"{where}.benchmark", f"unknown benchmark {t['benchmark']!r}", BENCHMARKS)
        domains = BENCHMARKS[t["benchmark"]].domains
        for role in ("source", "target"):
            if str(t[role]) not in domains:
                raise _fail(path, f"{where}.{role}", f"unknown {t['benchmark']} domain {t[role]!r}", domains)
        if t["backbone"] not in backbones:
            raise _fail(path, f"{where}.backbone", f"unknown backbone {t['backbone']!r}", backbones)
        if t.get("protocol") not in (None, "transductive", "inductive"):
            raise _fail(path, f"{where}.protocol", f"unknown protocol {t['protocol']!r}", ["inductive", "transductive"])
        model = _check_keys(path, f"{where}.model", t.get("model", {}), MODEL_KEYS)
        tasks.append(
            TaskSpec(
                t["benchmark"],
                str(t["source"]),
                str(t["target"]),
                dict(backbones[t["backbone"]]),
                t["backbone"],
                _check_train(path, f"{where}.train", t.get("train", {})),
                _check_keys(path, f"{where}.data", t.get("data", {}), set(t.get("data", {}))),
                model,
                t.get("protocol"),
            )
        )

    methods = _check_keys(path, "methods", raw["methods"], set(available()) | set(aliases()))
    for name, hp in methods.items():
        valid = set(hyperparameters(name)) - MODEL_KEYS
        _check_keys(path, f"methods.{name}", hp, valid | {"preset"})
        presets = get_method(name).presets
        if "preset" in hp and hp["preset"] not in presets:
            raise _fail(path, f"methods.{name}.preset", f"unknown preset {hp['preset']!r}", presets or ["none"])
    from ..validators import VALIDATORS

    validators = raw.get("validators", [])
    if not isinstance(validators, list):
        raise _fail(path, "validators", "must be a list of validator names", VALIDATORS)
    for i, name in enumerate(validators):
        if name not in VALIDATORS:
            raise _fail(path, f"validators[{i}]", f"unknown validator {name!r}", VALIDATORS)
    select_by = raw.get("select_by")
    if select_by is not None and select_by not in validators:
        raise _fail(path, "select_by", f"{select_by!r} is not in validators", validators)
    if validators and not (eval_every or checkpoints):
        raise _fail(path, "eval_every", "validators need checkpoints: set eval_every > 0 (or checkpoints > 0)")
    source_holdout = raw.get("source_holdout", 0.0)
    _check_type(path, "source_holdout", source_holdout, (int, float), "a fraction in [0, 1)")
    if not 0 <= source_holdout < 1:
        raise _fail(path, "source_holdout", f"must be in [0, 1), got {source_holdout}")
    needs_val = [v for v in validators if VALIDATORS[v].needs_source_val]
    if needs_val and not source_holdout:
        raise _fail(path, "source_holdout", f"validator(s) {', '.join(needs_val)} need a held-out source split; "
                    "set source_holdout (for example 0.1)")  # fmt: skip
    search = _check_keys(path, "search", raw.get("search", {}), set(methods))
    for name, space in search.items():
        _check_keys(path, f"search.{name}", space, set(hyperparameters(name)) - MODEL_KEYS)
        for key, spec in space.items():
            _check_search_spec(path, f"search.{name}.{key}", spec)
    search_draws = raw.get("search_draws", 1)
    _check_type(path, "search_draws", search_draws, int, "a positive integer")
    search_seed = raw.get("search_seed", 0)
    _check_type(path, "search_seed", search_seed, int, "an integer")
    return Suite(
        name=raw.get("name", path.stem),
        path=path,
        description=raw.get("description", ""),
        seeds=seeds,
        eval_every=eval_every,
        train=train,
        tasks=tasks,
        methods={name: dict(hp) for name, hp in methods.items()},
        data_root=raw.get("data_root"),
        metric=metric,
        validators=list(validators),
        select_by=select_by,
        source_holdout=float(source_holdout),
        search={k: dict(v) for k, v in search.items()},
        search_draws=search_draws,
        search_seed=search_seed,
        published=_check_published(path, raw.get("published", {}), {t.name for t in tasks}, set(methods)),
        budgets=list(budgets),
        checkpoints=checkpoints,
        split=split,
    )


def _check_published(path: Path, table: Any, tasks: set[str], methods: set[str]) -> dict[str, Any]:
    table = _check_keys(path, "published", table, tasks | {"avg", "source"})
    for key, value in table.items():
        if key == "source":
            _check_type(path, "published.source", value, str, "a string naming where the numbers come from")
            continue
        for method, number in _check_keys(path, f"published.{key}", value, methods).items():
            _check_type(path, f"published.{key}.{method}", number, (int, float), "an accuracy in %")
    return dict(table)


def _check_search_spec(path: Path, where: str, spec: Any) -> None:
    if not isinstance(spec, list) or not spec or spec[0] not in SEARCH_KINDS:
        raise _fail(path, where, "must be [kind, ...] with kind in " + ", ".join(SEARCH_KINDS))
    if spec[0] == "choice":
        if len(spec) != 2 or not isinstance(spec[1], list) or not spec[1]:
            raise _fail(path, where, 'must be ["choice", [value, ...]]')
        return
    numbers = len(spec) == 3 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in spec[1:])
    if not numbers or not spec[1] < spec[2] or (spec[0] == "log_uniform" and spec[1] <= 0):
        raise _fail(path, where, f'must be ["{spec[0]}", low, high] with low < high (and low > 0 for log_uniform)')
