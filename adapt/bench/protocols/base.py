"""What every adaptation protocol of the harness is: a :class:`Protocol`, registered in :data:`PROTOCOLS`.

A protocol knows where its methods come from, which suite keys it takes, how a run's method settings
resolve (what the run id hashes, :mod:`adapt.bench.identity`) and how one run goes: :meth:`Protocol.run`
(build, fit, score; one short function). Adding one is a file in this package that subclasses
:class:`Protocol` and decorates it with :func:`register_protocol`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ...data import Task
from ...methods.registry import get as get_method
from ...registry import Registry
from ..scoring import callbacks_for, target_scores

if TYPE_CHECKING:
    from ..runner import RunSpec

#: The protocol of a suite that does not name one (and whose run ids carry no ``adaptation`` key).
DEFAULT_PROTOCOL = "uda"
#: The unadapted source model's entry in a source-free or online suite.
BASELINE = "source_only"
#: Hyperparameters that size the model: a task's ``model`` table sets them, never a method's.
MODEL_KEYS = frozenset({"feature_dim", "bottleneck_dim"})
#: Suite keys that only some protocols take (:attr:`Protocol.suite_keys`), and why the others refuse them.
REFUSED: dict[str, str] = {
    "source": (
        "a [source] table is for source-free and online suites (protocol = ...); a uda suite trains every "
        "method on the source itself"
    ),
    "target_labels": "applies to uda suites (this one is {name!r})",
    "budgets": "an online suite streams the target once: it has no training budgets",
}


def json_like(value: Any) -> Any:
    """``value`` as its JSON record holds it (tuples become lists), so that a record read back compares equal."""
    return json.loads(json.dumps(value, default=str))


class MethodNameError(ValueError):
    """A suite's method name this protocol cannot run (``name``: the suite's key; ``problem``: why)."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name, self.problem = name, problem


@dataclass(frozen=True)
class RunContext:
    """What a run gets besides its spec and task: its resolved configuration (``config``, what the run id
    hashes), the method's resolved ``hparams``, the training options ``train`` (resolved, plus the suite's
    runtime options such as ``log_every``), where it runs, and the sweep's checkpoint and logger options
    (``fit_options()``, built when a fit starts)."""

    config: dict[str, Any]
    hparams: dict[str, Any]
    train: dict[str, Any]
    device: torch.device
    verbose: bool | None
    source_models: Path
    fit_options: Callable[[], dict[str, Any]] = dict


class Protocol:
    """One way of running a method on a task. Subclasses set the class attributes and implement
    :meth:`settings`, :meth:`revisions` and :meth:`run`; the rest has defaults for a protocol whose
    methods live in one registry beside the unadapted :data:`BASELINE`."""

    #: The name a suite gives (``protocol = "..."``).
    name: ClassVar[str]
    #: One line for ``adapt-bench list`` and the docs.
    summary: ClassVar[str]
    #: Where the protocol's methods are registered.
    methods: ClassVar[Registry[Any]]
    #: Runs start from a cached source model (trained once per task and seed, the suite's ``[source]``).
    uses_source_model: ClassVar[bool] = True
    #: Its methods see source data (so validators that score source data apply).
    sees_source: ClassVar[bool] = False
    #: It trains on the target (so it has checkpoints, validators and training options).
    trains_on_target: ClassVar[bool] = True
    #: What a suite's ``[train]`` table holds when it trains nothing on the target (a dataclass whose
    #: fields are the keys; for "online", the stream's settings).
    train_table: ClassVar[type | None] = None
    #: The keys of :data:`REFUSED` it takes.
    suite_keys: ClassVar[frozenset[str]] = frozenset({"source"})

    def canonical(self, name: str) -> str:
        """The registered spelling of one of its methods (``erm`` is the baseline's alias)."""
        return BASELINE if name in (BASELINE, "erm") else self.methods.canonical(name)

    def method_class(self, name: str) -> type:
        return get_method(BASELINE) if self.canonical(name) == BASELINE else self.methods.get(name)

    def method_names(self, keys: Iterable[str]) -> set[str]:
        """The method names a suite may list (``keys``: the suite's own, for protocols that compose names)."""
        return {BASELINE, *self.methods.names(), *self.methods.aliases()}

    def hyperparameters(self, name: str) -> dict[str, Any]:
        """The method's hyperparameters and their defaults."""
        return self.method_class(name).hyperparameter_defaults()

    def suite_hyperparameters(self, name: str) -> set[str]:
        """The keys a suite's ``[methods.<name>]`` table may set (the baseline takes none)."""
        if self.canonical(name) == BASELINE:
            return set()
        return set(self.hyperparameters(name)) - MODEL_KEYS - {"regularizers"} | {"preset"}

    def search_space(self, name: str) -> dict[str, list[Any]]:
        """The search space a method declares beside its defaults (``search_space``), as a suite writes
        one: ``{hyperparameter: [kind, ...]}``; ``{}`` when it declares none."""
        return {key: list(spec) for key, spec in getattr(self.method_class(name), "search_space", {}).items()}

    def probe(self, name: str, hparams: dict[str, Any]) -> None:
        """Build the method with a suite's ``hparams`` on a stand-in model, so that its own checks of the
        values run before any run does (ValueError or TypeError)."""
        raise NotImplementedError

    def settings(self, method: str, hparams: dict[str, Any], model: dict[str, Any],
                 train: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
        """The hyperparameters a run builds its method with and the training options it fits with."""
        raise NotImplementedError

    def revisions(self, method: str) -> dict[str, Any]:
        """The revisions of the method code a run uses (see :mod:`adapt._version`)."""
        if self.canonical(method) == BASELINE:
            return {}
        return {method: self.methods.get(method).revision}

    def run(self, spec: RunSpec, task: Task, context: RunContext) -> dict[str, Any]:
        """The record's result fields for one run."""
        raise NotImplementedError


#: Every protocol, by name: ``PROTOCOLS.get("online").run(spec, task, context)``.
PROTOCOLS: Registry[Protocol] = Registry("protocol")


def register_protocol(cls: type[Protocol]) -> type[Protocol]:
    """Class decorator: register one instance of ``cls`` under ``cls.name``."""
    PROTOCOLS.add(cls.name, cls())
    return cls


def fit_and_score(
    model: Any,
    data: tuple[Any, ...],
    spec: RunSpec,
    task: Task,
    context: RunContext,
    source_calibration: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Fit ``model`` on ``data`` (source and target, or the target alone) with the run's options and
    validators, then score it on the labeled target: the result fields of a run that trains.
    ``source_calibration``: see :func:`adapt.bench.scoring.source_calibration` (source-free runs)."""
    callbacks, validation = callbacks_for(spec.validators, spec.select_by, spec.eval_every, task, source_calibration)
    labeled = {} if task.target_labeled is None else {"target_labeled": task.target_labeled}
    history = model.fit(*data, seed=spec.seed, device=context.device, verbose=context.verbose, callbacks=callbacks,
                        target_eval=task.target_eval, **context.train, **context.fit_options(), **labeled)  # fmt: skip
    extra = {"target_labeled_examples": len(task.target_labeled)} if labeled else {}
    return {"curve": history.to_dict(orient="records"), **target_scores(model, task, spec.select_by, validation),
            **extra, "resumed_from_step": history.attrs.get("resumed_from_step", 0)}  # fmt: skip
