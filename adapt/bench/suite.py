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

    [methods."cdan+mcc (SDAT)"]           # a variant: a label of your own, the method it runs, and
    method = "cdan+mcc"                   # training options of its own (a [train]-like table), so that
    train = { sam_rho = 0.02 }            # one suite holds a method with and without them
"""

from __future__ import annotations

import re
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from .._optional import require
from ..data import BENCHMARKS
from ..data.base import task_name
from ..train.engine import TrainConfig
from ..validators import VALIDATORS
from .backbones import BACKBONES, build_backbone
from .protocols import BASELINE, DEFAULT_PROTOCOL, MODEL_KEYS, PROTOCOLS, REFUSED, MethodNameError, Protocol
from .search import check_search_spec

TASK_KEYS = {"benchmark", "source", "target", "backbone", "train", "data", "model", "protocol"}
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


def _at_least(minimum: int) -> dict[str, Any]:
    return {"minimum": minimum, "what": "a positive integer" if minimum == 1 else "a non-negative integer"}


@dataclass
class Suite:
    """A validated suite file. Its scalar keys are checked against these fields' types (a ``Literal`` lists
    the allowed values; ``metadata`` gives a minimum, a range, a description); a key the file leaves out
    takes the field's default."""

    path: Path
    train: dict[str, Any]
    tasks: list[TaskSpec]
    methods: dict[str, dict[str, Any]]
    #: Default: the file's name without ``.toml``.
    name: str = ""
    description: str = ""
    seeds: int = field(default=3, metadata=_at_least(1))
    #: Steps between target-accuracy curve points and validator checkpoints (0: none).
    eval_every: int = field(default=0, metadata=_at_least(0))
    data_root: str | None = None
    metric: Literal["accuracy", "mean_class_accuracy"] = "accuracy"
    validators: list[str] = field(default_factory=list)
    select_by: str | None = None
    #: Fraction of the labeled source held out for the validators that score source data.
    source_holdout: float = field(default=0.0, metadata={"range": (0, 1), "what": "a fraction in [0, 1)"})
    search: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    search_draws: int = field(default=1, metadata=_at_least(1))
    search_seed: int = 0
    #: Published accuracies (%) to print beside ours: task name or "avg" -> method -> number, plus "source".
    published: dict[str, Any] = field(default_factory=dict)
    #: Training lengths (steps) every task is run at; empty: the suite's ``train.steps`` only.
    budgets: list[int] = field(default_factory=list)
    #: Evenly spaced checkpoints per run (overrides ``eval_every``; 0: use ``eval_every``).
    checkpoints: int = field(default=0, metadata=_at_least(0))
    #: 'tuning' or 'confirmation' for suites of a tuning/confirmation pair (documentation only).
    split: Literal["tuning", "confirmation"] | None = None
    #: A registered protocol's name (:data:`adapt.bench.protocols.PROTOCOLS`): 'uda', 'source-free' or 'online'.
    protocol: str = DEFAULT_PROTOCOL
    #: How the source model of a source-free or online suite is trained (a ``[train]``-like table).
    source_train: dict[str, Any] = field(default_factory=dict)
    #: Labeled target examples for every run (semi-supervised adaptation): k per class (a k-shot split
    #: seeded by the run's seed) or 'saito-1'/'saito-3' (Saito et al.'s published lists); None: none.
    target_labels: int | str | None = field(default=None, metadata={
        "what": "labeled examples per class (an integer >= 1) or a published split's name"})  # fmt: skip
    #: Variants: a ``[methods."<label>"]`` table with ``method = ...``: label -> the method it runs and its own
    #: training options (``train``, over the suite's and the task's).
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
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


def _scalar_parts(hint: Any) -> tuple[Any, ...] | None:
    """The parts of a scalar field's type hint (``int | None`` -> ``(int, None)``; a Literal's values), or
    None for a list or table field (each of those has its own check)."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        return typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        parts = [_scalar_parts(arg) for arg in typing.get_args(hint)]
        return None if any(p is None for p in parts) else tuple(x for p in parts for x in p)  # type: ignore[union-attr]
    return (None,) if hint is type(None) else (hint,) if hint in (int, float, bool, str) else None


def _what(kinds: tuple[type, ...]) -> str:
    return {(str,): "a string", (bool,): "a boolean", (int,): "an integer"}.get(kinds, "a number")


def _check_scalars(path: Path, raw: dict[str, Any]) -> dict[str, Any]:
    """Every scalar key of a suite file, checked against its :class:`Suite` field (type, allowed values,
    ``metadata``'s minimum or range); a key the file leaves out takes the field's default."""
    hints = typing.get_type_hints(Suite)
    values = {}
    for f in fields(Suite):
        parts = _scalar_parts(hints[f.name])
        if parts is None or (f.name not in raw and f.default is MISSING):
            continue
        value = raw.get(f.name, f.default)
        values[f.name] = value
        if value is None and None in parts:
            continue
        if any(typing.get_origin(hint) is Literal for hint in (hints[f.name], *typing.get_args(hints[f.name]))):
            _check_choice(path, f.name, value, parts)
            continue
        kinds = _toml_types(hints[f.name])
        _check_type(path, f.name, value, kinds, f.metadata.get("what", _what(kinds)))
        low, high = f.metadata.get("range", (f.metadata.get("minimum"), None))
        if (low is not None and value < low) or (high is not None and value >= high):
            raise _fail(path, f.name, f"must be {f.metadata['what']}, got {value}")
        if kinds == (int, float):
            values[f.name] = float(value)  # what a run's id hashes: 0 and 0.0 are one setting
    return values


#: The keys of a suite file: its fields' names (``source`` is the source model's ``[train]`` table,
#: ``backbones`` the tables its tasks name).
TOP_KEYS = {f.name for f in fields(Suite)} - {"path", "source_train", "variants"} | {"source", "backbones"}
#: The keys of a ``[methods.<label>]`` table that are not hyperparameters (see :func:`_split_variants`).
VARIANT_KEYS = {"method", "train"}


def _check_train(path: Path, where: str, table: Any, config: type = TrainConfig) -> dict[str, Any]:
    """A ``[train]``-like table: its keys are ``config``'s fields (TrainConfig's, or a protocol's
    :attr:`~adapt.bench.protocols.Protocol.train_table`), each of the type the field's hint allows."""
    kinds_of = TRAIN_TYPES if config is TrainConfig else {name: _toml_types(hint) for name, hint in
                                                          typing.get_type_hints(config).items()}  # fmt: skip
    table = _check_keys(path, where, table, set(kinds_of))
    for key, value in table.items():
        kinds = kinds_of[key]
        what = "a string" if kinds == (str,) else "a boolean" if kinds == (bool,) else "a number"
        _check_type(path, f"{where}.{key}", value, kinds, what)
    try:
        config(**table)
    except ValueError as exc:
        raise _fail(path, where, str(exc)) from exc
    return table


def load_suite(name_or_path: str) -> Suite:
    """Read and fully validate a suite before anything runs."""
    path = resolve_suite(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise SuiteError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{path}: not valid TOML: {exc}") from exc
    _check_keys(path, "", raw, TOP_KEYS)
    for key in ("tasks", "methods"):
        if key not in raw:
            raise _fail(path, key, "missing")
    scalars = {**_check_scalars(path, raw), "name": raw.get("name", path.stem)}
    if not scalars["name"].strip() or re.search(r"[/\\]", scalars["name"]) or scalars["name"] in (".", ".."):
        raise _fail(path, "name", f"must be a name without '/' or '\\' (it names files), got {scalars['name']!r}")
    scalars["target_labels"] = _check_target_labels(path, scalars["target_labels"])
    protocol = PROTOCOLS.get(_check_choice(path, "protocol", scalars["protocol"], tuple(PROTOCOLS)))
    _check_protocol_keys(path, raw, protocol)
    if scalars["checkpoints"] and scalars["eval_every"]:
        raise _fail(path, "checkpoints", "set either checkpoints or eval_every, not both")
    backbones = _check_backbones(path, raw.get("backbones", {}))
    tasks = [_check_task(path, f"tasks[{i}]", t, backbones) for i, t in enumerate(_task_tables(path, raw))]
    _check_distinct_tasks(path, tasks)
    methods, variants = _split_variants(path, raw["methods"], protocol)
    runs_method = {label: variants.get(label, {}).get("method", label) for label in methods}
    methods = _check_methods(path, methods, protocol, runs_method)
    validators = _check_validators(path, raw, scalars, protocol)
    search = _check_search(path, raw, methods, protocol, runs_method)
    if scalars["defaults_tuned"] and not scalars["tuning_note"]:
        raise _fail(path, "tuning_note", "say what was tuned on this suite (defaults_tuned = true)")
    return Suite(
        **scalars,
        path=path,
        train=_check_train(path, "train", raw.get("train", {}), protocol.train_table or TrainConfig),
        tasks=tasks,
        methods={name: dict(hp) for name, hp in methods.items()},
        variants=variants,
        validators=validators,
        search=search,
        published=_check_published(path, raw.get("published", {}), {t.name for t in tasks}, set(methods)),
        budgets=_check_budgets(path, raw.get("budgets", [])),
        source_train=_check_source(path, raw.get("source", {})) if protocol.uses_source_model else {},
    )


def _check_source(path: Path, table: Any) -> dict[str, Any]:
    """``[source]``: how the source model is trained (a ``[train]``-like table), or ``pretrained = true``: the
    backbone's own pretrained classifier is the source model and nothing trains."""
    if not isinstance(table, dict) or "pretrained" not in table:
        return _check_train(path, "source", table)
    _check_type(path, "source.pretrained", table["pretrained"], (bool,), "a boolean")
    rest = {key: value for key, value in table.items() if key != "pretrained"}
    if not table["pretrained"]:
        return _check_train(path, "source", rest)
    if rest:
        raise _fail(path, "source", f"a pretrained source model trains nothing: remove {', '.join(sorted(rest))} "
                    "beside pretrained = true")  # fmt: skip
    return {"pretrained": True}


def _check_protocol_keys(path: Path, raw: dict[str, Any], protocol: Protocol) -> None:
    """The keys only some protocols take (:data:`adapt.bench.protocols.REFUSED`), and the ``[source]``
    table a protocol that starts from a source model needs; one that trains nothing on the target takes
    only its own :attr:`~adapt.bench.protocols.Protocol.train_table` keys in ``[train]``."""
    for key, why in REFUSED.items():
        if key in raw and key not in protocol.suite_keys:
            raise _fail(path, key, why.format(name=protocol.name))
    if protocol.uses_source_model and "source" not in raw:
        raise _fail(path, "source", f"a {protocol.name} suite says how its source model is trained: add a [source] "
                    "table (steps, lr, batch_size, ...)")  # fmt: skip
    allowed = [f.name for f in fields(protocol.train_table)] if protocol.train_table else []
    extra = sorted(set(raw.get("train", {})) - set(allowed))
    if not protocol.trains_on_target and extra:
        raise _fail(path, f"train.{extra[0]}", f"a {protocol.name} suite trains nothing on the target: its [train] "
                    f"table only sets {', '.join(allowed) or 'nothing'} (the source model's settings go in "
                    "[source])")  # fmt: skip


TARGET_LABEL_SPLITS = ("saito-1", "saito-3")


def _check_target_labels(path: Path, value: Any) -> int | str | None:
    """``target_labels``: None, an integer k >= 1 (k-shot) or a published split's name."""
    if value is None:
        return None
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


def _check_budgets(path: Path, budgets: Any) -> list[int]:
    positive = all(isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in budgets or [0])
    if not isinstance(budgets, list) or (budgets and not positive):
        raise _fail(path, "budgets", f"must be a list of positive step counts, got {budgets!r}")
    if len(set(budgets)) != len(budgets):
        raise _fail(path, "budgets", f"lists a step count twice: {budgets}")
    return list(budgets)


#: Backbone kinds whose dry build (to check options) is too costly: a ResNet's only option is ``weights``.
_NOT_DRY_BUILT = ("resnet18", "resnet34", "resnet50", "resnet101")


def _dry_build(spec: dict[str, Any]) -> tuple[dict[str, Any], tuple[int, ...]] | None:
    """What a suite's backbone is dry-built as, to check its options before anything runs: on a small input; a
    timm model as timm's tiny ViT once its name is found; a wide ResNet on 32x32 RGB images, one wide and without
    its checkpoint (which a run reads); CLIP not at all (its name is looked up): None."""
    if spec["kind"] == "timm":  # built small: timm's own model of the name is only looked up (it may be a ViT-L)
        timm = require("timm", "timm", "a timm backbone")
        if not isinstance(spec.get("name"), str) or not timm.is_model(spec["name"]):
            raise ValueError(f"name must be a timm model name (timm.list_models()), got {spec.get('name')!r}")
        return {**spec, "name": "test_vit", "pretrained": False, "checkpoint": None, "img_size": 16}, (3, 16, 16)
    if spec["kind"] == "clip":  # looked up, not built (a ViT-L's text tower is large): a run builds it
        open_clip = require("open_clip", "clip", "a CLIP backbone")
        if spec.get("config") is None and spec.get("name", "ViT-B-32") not in open_clip.list_models():
            raise ValueError(f"name must be an open_clip model name (open_clip.list_models()), got {spec['name']!r}")
        return None
    if spec["kind"] == "wide_resnet":
        widen = spec.get("widen_factor", 1)
        if not isinstance(widen, int) or isinstance(widen, bool) or widen < 1:
            raise ValueError(f"widen_factor must be a positive integer, got {widen!r}")
        if not isinstance(spec.get("checkpoint"), (str, type(None))):
            raise ValueError(f"checkpoint must be a file path, got {spec['checkpoint']!r}")
        return {**spec, "widen_factor": 1, "checkpoint": None, "sha256": None}, (3, 32, 32)
    return spec, (1, 16, 16) if spec["kind"] != "lenet" else (1, 28, 28)


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
            dry = _dry_build(spec)
            if dry is not None:
                build_backbone(*dry)
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
        _check_data(path, f"{where}.data", t.get("data", {}), t["benchmark"]),
        _check_keys(path, f"{where}.model", t.get("model", {}), MODEL_KEYS),
        t.get("protocol"),
    )


def _check_distinct_tasks(path: Path, tasks: list[TaskSpec]) -> None:
    """The same task (benchmark, domains, data, backbone, training and model options) listed twice would
    announce runs that share one record."""
    seen: dict[str, int] = {}
    for i, t in enumerate(tasks):
        key = repr((t.name, sorted(t.data.items()), sorted(t.backbone.items()), sorted(t.train.items()),
                    sorted(t.model.items()), t.protocol))  # fmt: skip
        if key in seen:
            raise _fail(path, f"tasks[{i}]", f"the same task as tasks[{seen[key]}] ({t.name}); list it once")
        seen[key] = i


def _check_data(path: Path, where: str, data: Any, benchmark: str) -> dict[str, Any]:
    """A task's data options: keys the benchmark takes, each of its default's type; fractions in range."""
    defaults = {"seed": 0, "test_fraction": 0.3, **BENCHMARKS[benchmark].options}
    _check_keys(path, where, data, set(defaults))
    for key, value in data.items():
        default = defaults[key]
        if isinstance(default, bool):
            _check_type(path, f"{where}.{key}", value, bool, "a boolean")
        elif isinstance(default, (int, float)):
            kinds = (int,) if isinstance(default, int) else (int, float)
            _check_type(path, f"{where}.{key}", value, kinds, "an integer" if kinds == (int,) else "a number")
        elif isinstance(default, str):
            _check_type(path, f"{where}.{key}", value, str, "a string")
    if not 0 < data.get("test_fraction", 0.3) < 1:
        raise _fail(path, f"{where}.test_fraction", f"must be a fraction in (0, 1), got {data['test_fraction']}")
    return data


def _split_variants(path: Path, table: Any, protocol: Protocol) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``[methods.<label>]`` tables without their ``method`` and ``train`` keys, and the variants: the tables
    that name the method they run (``method = "cdan+mcc"``) under a label of their own, with their own
    training options, so that one suite holds one method with and without, say, SDAT."""
    table = _check_keys(path, "methods", table, set(table) if isinstance(table, dict) else set())
    methods, variants = {}, {}
    for label, hp in table.items():
        hp = dict(_check_keys(path, f"methods.{label}", hp, set(hp) if isinstance(hp, dict) else set()))
        train = _check_train(path, f"methods.{label}.train", hp.pop("train", {}), protocol.train_table or TrainConfig)
        if "method" in hp:
            method = hp.pop("method")
            _check_type(path, f"methods.{label}.method", method, (str,), "a method's name")
            if _is_method_name(protocol, label):
                raise _fail(path, f"methods.{label}.method", f"{label!r} is itself a method's name; a variant's "
                            f'label says how it differs, e.g. [methods."{method} (mine)"]')  # fmt: skip
            variants[label] = {"method": method, "train": train}
        elif train:
            variants[label] = {"method": label, "train": train}
        methods[label] = hp
    return methods, variants


def _is_method_name(protocol: Protocol, name: str) -> bool:
    try:
        return name in protocol.method_names([name])
    except MethodNameError:
        return False


def _check_methods(path: Path, table: dict[str, Any], protocol: Protocol,
                   runs_method: dict[str, str]) -> dict[str, dict[str, Any]]:  # fmt: skip
    """The suite's methods (by label: ``runs_method`` maps each to the method it runs): names the protocol
    runs, hyperparameters of the right types, presets that exist, and values the method's own checks accept
    (``__init__`` does no other work)."""
    try:
        names = protocol.method_names(runs_method.values())
    except MethodNameError as exc:
        raise _fail(path, f"methods.{exc.name}", exc.problem) from exc
    for label, name in runs_method.items():
        if name not in names:
            where = f"methods.{label}.method" if label != name else f"methods.{label}"
            raise _fail(path, where, "unknown key" if label == name else f"unknown method {name!r}", names)
    for label, hp in table.items():
        name = runs_method[label]
        _check_keys(path, f"methods.{label}", hp, protocol.suite_hyperparameters(name) | VARIANT_KEYS)
        if protocol.canonical(name) == BASELINE and protocol.uses_source_model:
            continue
        presets = protocol.method_class(name).presets
        if "preset" in hp and hp["preset"] not in presets:
            raise _fail(path, f"methods.{label}.preset", f"unknown preset {hp['preset']!r}", presets or ["none"])
        _check_hyperparameter_types(path, label, hp, protocol.hyperparameters(name))
        try:
            protocol.probe(name, hp)
        except (ValueError, TypeError) as exc:
            raise _fail(path, f"methods.{label}", str(exc)) from exc
    return table


def _check_hyperparameter_types(path: Path, name: str, hp: dict[str, Any], defaults: dict[str, Any]) -> None:
    """Each value against the type of the method's default (a float takes integers; a tuple, a list)."""
    for key, value in hp.items():
        default = defaults.get(key)
        if key == "preset" or default is None:
            continue
        kinds = (int, float) if isinstance(default, float) else (list,) if isinstance(default, tuple) else (
            type(default),)  # fmt: skip
        what = "a number" if len(kinds) > 1 else {int: "an integer", bool: "a boolean", str: "a string",
                                                   list: "a list"}.get(kinds[0], type(default).__name__)  # fmt: skip
        _check_type(path, f"methods.{name}.{key}", value, kinds, what)


def _calibrates_on_source_model(name: str) -> bool:
    """An accuracy estimator that reads only the held-out source split's logits and labels, which the
    source model's provider can hand over (:func:`adapt.bench.scoring.source_calibration`)."""
    cls = VALIDATORS[name]
    return bool(getattr(cls, "estimates_accuracy", False)) and not cls.needs_source_train


def _check_validators(path: Path, raw: dict[str, Any], scalars: dict[str, Any], protocol: Protocol) -> list[str]:
    """Registered validators, a ``select_by`` among them, checkpoints to score, the held-out source split
    the source-scoring ones need, and none that scores what the protocol's methods never see."""
    validators = raw.get("validators", [])
    if not isinstance(validators, list):
        raise _fail(path, "validators", "must be a list of validator names", VALIDATORS)
    for i, name in enumerate(validators):
        if name not in VALIDATORS:
            raise _fail(path, f"validators[{i}]", f"unknown validator {name!r}", VALIDATORS)
    if scalars["select_by"] is not None and scalars["select_by"] not in validators:
        raise _fail(path, "select_by", f"{scalars['select_by']!r} is not in validators", validators)
    if validators and not protocol.trains_on_target:
        raise _fail(path, "validators", f"a {protocol.name} suite has no checkpoints to select from: remove validators")
    if validators and not (scalars["eval_every"] or scalars["checkpoints"]):
        raise _fail(path, "eval_every", "validators need checkpoints: set eval_every > 0 (or checkpoints > 0)")
    needs_source = [v for v in validators if VALIDATORS[v].needs_source_val or VALIDATORS[v].needs_source_train]
    if protocol.uses_source_model:  # the estimators calibrate on the source model's outputs, not the method's
        needs_source = [v for v in needs_source if not _calibrates_on_source_model(v)]
    if needs_source and not protocol.sees_source:
        raise _fail(path, "validators", f"{', '.join(needs_source)} score source data, which a {protocol.name} "
                    "method never sees; use target-only validators or the accuracy estimators (calibrated on the "
                    "source model's outputs)")  # fmt: skip
    needs_val = [v for v in validators if VALIDATORS[v].needs_source_val]
    if needs_val and not scalars["source_holdout"]:
        raise _fail(path, "source_holdout", f"validator(s) {', '.join(needs_val)} need a held-out source split; "
                    "set source_holdout (for example 0.1)")  # fmt: skip
    return list(validators)


def _check_search(path: Path, raw: dict[str, Any], methods: dict[str, Any], protocol: Protocol,
                  runs_method: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    """``[search]``: per method (or label), ranges of its hyperparameters, or "default" for the space it declares."""
    search = dict(_check_keys(path, "search", raw.get("search", {}), set(methods)))
    for label, space in search.items():
        name = runs_method[label]
        if space == "default":  # the method's own search space, declared beside its defaults
            search[label] = space = protocol.search_space(name)
            if not space:
                raise _fail(path, f"search.{label}", f"method {name!r} declares no search space; give the ranges: "
                            f"[search.{label}] <hyperparameter> = [kind, ...]")  # fmt: skip
        elif not isinstance(space, dict):
            raise _fail(path, f"search.{label}", f'must be a table of ranges or "default", got {space!r}')
        _check_keys(path, f"search.{label}", space, set(protocol.hyperparameters(name)) - MODEL_KEYS)
        for key, spec in space.items():
            problem = check_search_spec(spec)
            if problem:
                raise _fail(path, f"search.{label}.{key}", problem)
    return {k: dict(v) for k, v in search.items()}


def _check_published(path: Path, table: Any, tasks: set[str], methods: set[str]) -> dict[str, Any]:
    table = _check_keys(path, "published", table, tasks | {"avg", "source"})
    for key, value in table.items():
        if key == "source":
            _check_type(path, "published.source", value, str, "a string naming where the numbers come from")
            continue
        for method, number in _check_keys(path, f"published.{key}", value, methods).items():
            _check_type(path, f"published.{key}.{method}", number, (int, float), "an accuracy in %")
    return dict(table)
