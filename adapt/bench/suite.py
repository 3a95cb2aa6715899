"""Suite files: which methods, tasks, seeds and training protocol a sweep runs.

A suite is a TOML file; the ones shipped with the package are in ``adapt/bench/suites/``::

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

    [methods."cdan+bsp"]                  # a method plus regularizers at their default weights
    regularizers = { bsp = 2e-4 }         # (optional) other weights
"""

from __future__ import annotations

import tomllib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from torch import nn

from ..data import BENCHMARKS
from ..data.base import task_name
from ..methods import METHODS, create, hyperparameters
from ..methods.registry import get as get_method
from ..methods.registry import split_composed
from ..train.engine import TrainConfig
from ..validators import VALIDATORS
from .backbones import BACKBONES, build_backbone
from .protocols import (
    BASELINE,
    PROTOCOLS,
    canonical_method,
    method_hyperparameters,
    method_registry,
    method_search_space,
)
from .search import check_search_spec

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
    "protocol",
    "source",
    "target_labels",
    "defaults_tuned",
    "tuning_note",
}
METRICS = ("accuracy", "mean_class_accuracy")
TASK_KEYS = {"benchmark", "source", "target", "backbone", "train", "data", "model", "protocol"}
MODEL_KEYS = {"feature_dim", "bottleneck_dim"}
#: ``data`` keys every benchmark takes (``adapt.data.task`` arguments) besides its own options.
DATA_KEYS = {"seed", "test_fraction"}
# Fields a suite may not set: they belong to the command line or the harness.
TRAIN_RESERVED = {"seed", "device", "callbacks", "verbose", "checkpoint_path", "checkpoint_every", "checkpoint_seconds",
                  "checkpoint_delete"}  # fmt: skip


class SuiteError(ValueError):
    """A suite file is invalid; the message names the file, the key and the allowed values."""


def available_suites() -> dict[str, Path]:
    """Suite name -> file, for the suites shipped in the package (``adapt/bench/suites``)."""
    folder = resources.files("adapt.bench") / "suites"
    return {Path(entry.name).stem: Path(str(entry)) for entry in sorted(folder.iterdir(), key=lambda e: e.name)
            if entry.name.endswith(".toml")}  # fmt: skip


def resolve_suite(name_or_path: str) -> Path:
    """A suite file from a shipped suite's name or a path to a ``.toml`` file."""
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
        return task_name(self.benchmark, self.source, self.target)


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
    #: 'uda' (default), 'source-free' or 'online': see :mod:`adapt.bench.protocols`.
    protocol: str = "uda"
    #: How the source model of a source-free or online suite is trained (a ``[train]``-like table).
    source_train: dict[str, Any] = field(default_factory=dict)
    #: Labeled target examples for every run (semi-supervised adaptation): k per class (a k-shot split
    #: seeded by the run's seed) or 'saito-1'/'saito-3' (Saito et al.'s published lists); None: none.
    target_labels: int | str | None = None
    #: Whether the library's defaults were chosen (screened, tuned) on this suite's shifts: its numbers are
    #: then no evidence for them, and its report says so (``tuning_note``: what was tuned).
    defaults_tuned: bool = False
    tuning_note: str = ""

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


def _toml_types(hint: Any) -> tuple[type, ...]:
    """The TOML value types that fit a TrainConfig field's type hint (a float field takes integers too)."""
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return tuple({type(v) for v in typing.get_args(hint) if v is not None})
    if origin in (typing.Union, types.UnionType):
        return tuple(t for arg in typing.get_args(hint) if arg is not type(None) for t in _toml_types(arg))
    if hint is float:
        return (int, float)
    return (hint,) if isinstance(hint, type) else (str,)


#: TrainConfig field -> the TOML types a suite may give it, read from the dataclass itself.
TRAIN_TYPES = {name: _toml_types(hint) for name, hint in typing.get_type_hints(TrainConfig).items()
               if name not in TRAIN_RESERVED}  # fmt: skip


def _check_train(path: Path, where: str, table: Any) -> dict[str, Any]:
    table = _check_keys(path, where, table, set(TRAIN_TYPES))
    for key, value in table.items():
        kinds = TRAIN_TYPES[key]
        what = "a string" if kinds == (str,) else "a boolean" if kinds == (bool,) else "a number"
        _check_type(path, f"{where}.{key}", value, kinds, what)
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
    schedule = _check_schedule(path, raw)
    backbones = _check_backbones(path, raw.get("backbones", {}))
    tasks = [_check_task(path, f"tasks[{i}]", t, backbones) for i, t in enumerate(_task_tables(path, raw))]
    protocol = _check_choice(path, "protocol", raw.get("protocol", "uda"), PROTOCOLS)
    uda = protocol == "uda"
    methods = _check_methods(path, raw["methods"]) if uda else _check_protocol_methods(path, raw, protocol)
    validators, select_by, source_holdout = _check_validators(
        path, raw, schedule["eval_every"] or schedule["checkpoints"]
    )
    _check_protocol_fields(path, raw, protocol, validators)
    search, search_draws, search_seed = _check_search(path, raw, methods, protocol)
    return Suite(
        name=raw.get("name", path.stem),
        path=path,
        description=raw.get("description", ""),
        train=_check_train(path, "train", raw.get("train", {})),
        tasks=tasks,
        methods={name: dict(hp) for name, hp in methods.items()},
        data_root=raw.get("data_root"),
        metric=_check_choice(path, "metric", raw.get("metric", "accuracy"), METRICS),
        validators=validators,
        select_by=select_by,
        source_holdout=source_holdout,
        search=search,
        search_draws=search_draws,
        search_seed=search_seed,
        published=_check_published(path, raw.get("published", {}), {t.name for t in tasks}, set(methods)),
        split=_check_choice(path, "split", raw.get("split"), (None, "tuning", "confirmation")),
        protocol=protocol,
        source_train=_check_train(path, "source", raw.get("source", {})) if protocol != "uda" else {},
        target_labels=_check_target_labels(path, raw.get("target_labels"), protocol),
        **_check_tuning(path, raw),
        **schedule,
    )


def _check_tuning(path: Path, raw: dict[str, Any]) -> dict[str, Any]:
    """``defaults_tuned`` (a boolean) and, when true, ``tuning_note`` saying what was tuned on the suite."""
    tuned, note = raw.get("defaults_tuned", False), raw.get("tuning_note", "")
    _check_type(path, "defaults_tuned", tuned, bool, "a boolean")
    _check_type(path, "tuning_note", note, str, "a string")
    if tuned and not note:
        raise _fail(path, "tuning_note", "say what was tuned on this suite (defaults_tuned = true)")
    return {"defaults_tuned": tuned, "tuning_note": note}


TARGET_LABEL_SPLITS = ("saito-1", "saito-3")


def _check_target_labels(path: Path, value: Any, protocol: str) -> int | str | None:
    """``target_labels``: None, an integer k >= 1 (k-shot) or a published split's name."""
    if value is None:
        return None
    if protocol != "uda":
        raise _fail(path, "target_labels", f"applies to uda suites (this one is {protocol!r})")
    if isinstance(value, str):
        return _check_choice(path, "target_labels", value, TARGET_LABEL_SPLITS)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(path, "target_labels", f"must be labeled examples per class (an integer >= 1) or one of "
                    f"{', '.join(TARGET_LABEL_SPLITS)}; got {value!r}")  # fmt: skip
    return value


def _check_choice(path: Path, key: str, value: Any, allowed: tuple[Any, ...]) -> Any:
    if value not in allowed:
        raise _fail(path, key, f"unknown {key} {value!r}", [a for a in allowed if a is not None])
    return value


def _check_schedule(path: Path, raw: dict[str, Any]) -> dict[str, Any]:
    """Seeds, budgets and checkpoint spacing."""
    seeds = _check_count(path, "seeds", raw.get("seeds", 3), minimum=1)
    eval_every = _check_count(path, "eval_every", raw.get("eval_every", 0), minimum=0)
    checkpoints = _check_count(path, "checkpoints", raw.get("checkpoints", 0), minimum=0)
    if checkpoints and eval_every:
        raise _fail(path, "checkpoints", "set either checkpoints or eval_every, not both")
    budgets = raw.get("budgets", [])
    positive = all(isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in budgets or [0])
    if not isinstance(budgets, list) or (budgets and not positive):
        raise _fail(path, "budgets", f"must be a list of positive step counts, got {budgets!r}")
    if len(set(budgets)) != len(budgets):
        raise _fail(path, "budgets", f"lists a step count twice: {budgets}")
    return {"seeds": seeds, "eval_every": eval_every, "checkpoints": checkpoints, "budgets": list(budgets)}


def _check_count(path: Path, key: str, value: Any, minimum: int) -> int:
    """An integer of at least ``minimum`` (``seeds = 0`` would run nothing and look like success)."""
    what = "a positive integer" if minimum == 1 else "a non-negative integer"
    _check_type(path, key, value, int, what)
    if value < minimum:
        raise _fail(path, key, f"must be {what}, got {value}")
    return value


#: Backbone kinds whose dry build (to check options) is too costly: a ResNet's only option is ``weights``.
_NOT_DRY_BUILT = ("resnet18", "resnet34", "resnet50", "resnet101")


def _check_backbones(path: Path, table: Any) -> dict[str, dict[str, Any]]:
    backbones = _check_keys(path, "backbones", table, set(table) if isinstance(table, dict) else set())
    every_option = {"kind"}.union(*(kind.options for kind in BACKBONES.values()))
    for name, spec in backbones.items():
        spec = _check_keys(path, f"backbones.{name}", spec, every_option)
        if spec.get("kind") not in BACKBONES:
            raise _fail(path, f"backbones.{name}.kind", f"unknown backbone kind {spec.get('kind')!r}", BACKBONES)
        _check_keys(path, f"backbones.{name}", spec, {"kind"} | BACKBONES[spec["kind"]].options)
        if spec["kind"] in _NOT_DRY_BUILT:
            if spec.get("weights") is not None:
                _check_type(path, f"backbones.{name}.weights", spec["weights"], str, "a torchvision weights name")
            continue
        try:  # a dry build on a small input catches option values of the wrong type or range
            build_backbone(spec, (1, 16, 16) if spec["kind"] != "lenet" else (1, 28, 28))
        except Exception as exc:
            raise _fail(path, f"backbones.{name}", f"bad option: {type(exc).__name__}: {exc}") from exc
    return backbones


def _task_tables(path: Path, raw: dict[str, Any]) -> list[Any]:
    if not isinstance(raw["tasks"], list) or not raw["tasks"]:
        raise _fail(path, "tasks", "must be a non-empty array of tables ([[tasks]])")
    return raw["tasks"]


def _check_task(path: Path, where: str, t: Any, backbones: dict[str, dict[str, Any]]) -> TaskSpec:
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
    return TaskSpec(
        t["benchmark"],
        str(t["source"]),
        str(t["target"]),
        dict(backbones[t["backbone"]]),
        t["backbone"],
        _check_train(path, f"{where}.train", t.get("train", {})),
        _check_keys(path, f"{where}.data", t.get("data", {}), set(BENCHMARKS[t["benchmark"]].options) | DATA_KEYS),
        _check_keys(path, f"{where}.model", t.get("model", {}), MODEL_KEYS),
        t.get("protocol"),
    )


def _check_methods(path: Path, table: Any) -> dict[str, dict[str, Any]]:
    composed = set()
    for key in table if isinstance(table, dict) else ():
        if "+" in key or key.lower().startswith("pa:"):  # plus regularizers ("cdan+bsp"); pytorch-adapt's ("pa:dann")
            try:
                split_composed(key)
            except ValueError as exc:
                raise _fail(path, f"methods.{key}", str(exc)) from exc
            composed.add(key)
    methods = _check_keys(path, "methods", table, set(METHODS) | set(METHODS.aliases()) | composed)
    for name, hp in methods.items():
        _check_keys(path, f"methods.{name}", hp, set(hyperparameters(name)) - MODEL_KEYS | {"preset"})
        presets = get_method(name).presets
        if "preset" in hp and hp["preset"] not in presets:
            raise _fail(path, f"methods.{name}.preset", f"unknown preset {hp['preset']!r}", presets or ["none"])
        _check_hyperparameter_values(path, name, hp)
    return methods


def _check_protocol_fields(path: Path, raw: dict[str, Any], protocol: str, validators: list[str]) -> None:
    """What a protocol allows besides its methods: [source] only off 'uda', no source validators off it,
    and an online suite (nothing trained on the target) takes no checkpoints, validators or training steps."""
    if protocol == "uda":
        if "source" in raw:
            raise _fail(path, "source", "a [source] table is for source-free and online suites (protocol = ...); "
                        "a uda suite trains every method on the source itself")  # fmt: skip
        return
    needs_source = [v for v in validators if VALIDATORS[v].needs_source_val or VALIDATORS[v].needs_source_train]
    if needs_source:
        raise _fail(path, "validators", f"{', '.join(needs_source)} score source data, which a {protocol} "
                    "method never sees; use target-only validators")  # fmt: skip
    if protocol == "online":
        if validators:
            raise _fail(path, "validators", "an online suite has no checkpoints to select from: remove validators")
        extra = sorted(set(raw.get("train", {})) - {"batch_size"})
        if extra:
            raise _fail(path, f"train.{extra[0]}", "an online suite trains nothing on the target: its [train] table "
                        "only sets the stream's batch_size (the source model's settings go in [source])")  # fmt: skip


def _check_protocol_methods(path: Path, raw: dict[str, Any], protocol: str) -> dict[str, dict[str, Any]]:
    """The methods of a source-free or online suite: its registry's, plus the unadapted source model."""
    if "source" not in raw:
        raise _fail(path, "source", f"a {protocol} suite says how its source model is trained: add a [source] "
                    "table (steps, lr, batch_size, ...)")  # fmt: skip
    if "budgets" in raw and protocol == "online":
        raise _fail(path, "budgets", "an online suite streams the target once: it has no training budgets")
    registry = method_registry(protocol)
    methods = _check_keys(path, "methods", raw["methods"], {BASELINE, *registry.names(), *registry.aliases()})
    for name, hp in methods.items():
        if canonical_method(protocol, name) == BASELINE:
            _check_keys(path, f"methods.{name}", hp, set())
            continue
        allowed = set(method_hyperparameters(protocol, name)) - MODEL_KEYS - {"regularizers"} | {"preset"}
        _check_keys(path, f"methods.{name}", hp, allowed)
        cls = registry.get(name)
        if "preset" in hp and hp["preset"] not in cls.presets:
            raise _fail(path, f"methods.{name}.preset", f"unknown preset {hp['preset']!r}", cls.presets or ["none"])
        preset = hp.get("preset")
        base = {} if preset is None else cls.preset(preset)[0] if protocol == "source-free" else cls.presets[preset]
        settings = {**base, **{k: v for k, v in hp.items() if k != "preset"}}
        try:  # the method's own checks of its values
            args = (nn.Identity(), 2) if protocol == "source-free" else (_PROBE_MODEL,)
            cls(*args, **settings)
        except (ValueError, TypeError) as exc:
            raise _fail(path, f"methods.{name}", str(exc)) from exc
    return methods


#: A model with both kinds of BatchNorm, for test-time methods to check their settings on.
_PROBE_MODEL = nn.Sequential(nn.BatchNorm1d(2), nn.BatchNorm2d(2))


def _check_hyperparameter_values(path: Path, name: str, hp: dict[str, Any]) -> None:
    """Types against the defaults, then the method's own checks (``__init__`` does no other work)."""
    defaults = hyperparameters(name)
    for key, value in hp.items():
        default = defaults.get(key)
        if key == "preset" or default is None:
            continue
        kinds = (int, float) if isinstance(default, float) else (list,) if isinstance(default, tuple) else (
            type(default),)  # fmt: skip
        what = "a number" if len(kinds) > 1 else {int: "an integer", bool: "a boolean", str: "a string",
                                                   list: "a list"}.get(kinds[0], type(default).__name__)  # fmt: skip
        _check_type(path, f"methods.{name}.{key}", value, kinds, what)
    try:
        create(name, nn.Identity(), 2, **hp)
    except (ValueError, TypeError) as exc:
        raise _fail(path, f"methods.{name}", str(exc)) from exc


def _check_validators(path: Path, raw: dict[str, Any], has_checkpoints: int) -> tuple[list[str], str | None, float]:
    validators = raw.get("validators", [])
    if not isinstance(validators, list):
        raise _fail(path, "validators", "must be a list of validator names", VALIDATORS)
    for i, name in enumerate(validators):
        if name not in VALIDATORS:
            raise _fail(path, f"validators[{i}]", f"unknown validator {name!r}", VALIDATORS)
    select_by = raw.get("select_by")
    if select_by is not None and select_by not in validators:
        raise _fail(path, "select_by", f"{select_by!r} is not in validators", validators)
    if validators and not has_checkpoints:
        raise _fail(path, "eval_every", "validators need checkpoints: set eval_every > 0 (or checkpoints > 0)")
    source_holdout = raw.get("source_holdout", 0.0)
    _check_type(path, "source_holdout", source_holdout, (int, float), "a fraction in [0, 1)")
    if not 0 <= source_holdout < 1:
        raise _fail(path, "source_holdout", f"must be in [0, 1), got {source_holdout}")
    needs_val = [v for v in validators if VALIDATORS[v].needs_source_val]
    if needs_val and not source_holdout:
        raise _fail(path, "source_holdout", f"validator(s) {', '.join(needs_val)} need a held-out source split; "
                    "set source_holdout (for example 0.1)")  # fmt: skip
    return list(validators), select_by, float(source_holdout)


def _check_search(
    path: Path, raw: dict[str, Any], methods: dict[str, Any], protocol: str = "uda"
) -> tuple[dict[str, Any], int, int]:
    search = dict(_check_keys(path, "search", raw.get("search", {}), set(methods)))
    for name, space in search.items():
        if space == "default":  # the method's own search space, declared beside its defaults
            search[name] = space = method_search_space(protocol, name)
            if not space:
                raise _fail(path, f"search.{name}", f"method {name!r} declares no search space; give the ranges: "
                            f"[search.{name}] <hyperparameter> = [kind, ...]")  # fmt: skip
        elif not isinstance(space, dict):
            raise _fail(path, f"search.{name}", f'must be a table of ranges or "default", got {space!r}')
        _check_keys(path, f"search.{name}", space, set(method_hyperparameters(protocol, name)) - MODEL_KEYS)
        for key, spec in space.items():
            problem = check_search_spec(spec)
            if problem:
                raise _fail(path, f"search.{name}.{key}", problem)
    search_draws = _check_count(path, "search_draws", raw.get("search_draws", 1), minimum=1)
    search_seed = raw.get("search_seed", 0)
    _check_type(path, "search_seed", search_seed, int, "an integer")
    return {k: dict(v) for k, v in search.items()}, search_draws, search_seed


def _check_published(path: Path, table: Any, tasks: set[str], methods: set[str]) -> dict[str, Any]:
    table = _check_keys(path, "published", table, tasks | {"avg", "source"})
    for key, value in table.items():
        if key == "source":
            _check_type(path, "published.source", value, str, "a string naming where the numbers come from")
            continue
        for method, number in _check_keys(path, f"published.{key}", value, methods).items():
            _check_type(path, f"published.{key}.{method}", number, (int, float), "an accuracy in %")
    return dict(table)
