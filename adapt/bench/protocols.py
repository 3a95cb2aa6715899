"""The harness's adaptation protocols besides unsupervised domain adaptation ("uda").

``source-free``: a source model is trained once per task and seed (SourceOnly on the labeled source,
the suite's ``[source]`` settings), saved under ``<out>/source-models/<hash>.pt`` keyed by everything
that determines it (resolved as a run's identity is: defaults and revisions included), and every
source-free method of the suite adapts a copy with the target alone
(``Method.from_source(model).fit(target)``). The ``source_only`` entry scores that model unadapted.

``online``: the same cached source model is wrapped by a test-time method, and the labeled target
test set is streamed through it once, in an order fixed by the run's seed, in batches of the suite's
``train.batch_size``. The record's ``accuracy`` is the online accuracy (each batch predicted before
the method adapts on it); ``accuracy_after`` scores the adapted model on the whole stream afterwards.
Target labels only ever score.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ..data import Task
from ..errors import InputError
from ..methods import create, get, hyperparameters
from ..methods.base import Adapter
from ..methods.registry import METHODS, SOURCE_FREE_METHODS, canonical_name
from ..registry import Registry
from ..testtime import TEST_TIME_METHODS, evaluate_batches
from .backbones import build_backbone
from .identity import BASELINE, digest

PROTOCOLS = ("uda", "source-free", "online")


def method_registry(protocol: str) -> Registry[Any]:
    """The registry a suite of this protocol draws its methods from (besides :data:`BASELINE`)."""
    return {"uda": METHODS, "source-free": SOURCE_FREE_METHODS, "online": TEST_TIME_METHODS}[protocol]


def canonical_method(protocol: str, name: str) -> str:
    """The registered spelling of a method of this protocol (composed names for "uda")."""
    if protocol == "uda":
        return canonical_name(name)
    return BASELINE if name in (BASELINE, "erm") else method_registry(protocol).canonical(name)


def method_hyperparameters(protocol: str, name: str) -> dict[str, Any]:
    """The method's hyperparameters a suite may set, with their defaults."""
    if protocol == "uda":
        return hyperparameters(name)
    if canonical_method(protocol, name) == BASELINE:
        return hyperparameters(BASELINE)
    return method_registry(protocol).get(name).hyperparameter_defaults()


def method_search_space(protocol: str, name: str) -> dict[str, list[Any]]:
    """The search space a method declares beside its defaults (``search_space``), as a suite writes one:
    ``{hyperparameter: [kind, ...]}``; ``{}`` when it declares none."""
    cls = get(name) if protocol == "uda" or canonical_method(protocol, name) == BASELINE else (
        method_registry(protocol).get(name))  # fmt: skip
    return {key: list(spec) for key, spec in getattr(cls, "search_space", {}).items()}


def source_model_key(config: dict[str, Any]) -> str:
    """The cache key of a run's source model, from the run's resolved configuration
    (:func:`adapt.bench.identity.resolve`): the task, its data, backbone, how SourceOnly is trained
    (hyperparameters and training options, defaults included), the seed, and the revisions of the
    library, backbone and benchmark."""
    keys = ("benchmark", "source", "target", "protocol", "data", "backbone", "source_train", "seed", "source_holdout")
    revisions = {k: config["revisions"][k] for k in ("library", "backbone", "benchmark")}
    return digest({**{k: config.get(k) for k in keys}, "revisions": revisions})


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One process at a time (parallel runs of one task and seed share a source model); without
    ``fcntl`` (Windows) parallel runs may each train it, to the same weights."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def source_model(
    config: dict[str, Any], task: Task, folder: Path, device: torch.device, verbose: bool | None
) -> tuple[Adapter, bool]:
    """The run's source model (``config``: the run's resolved configuration): loaded from ``folder`` if a
    run trained it already, else trained and saved (atomically). Returns the model and whether it came
    from the cache."""
    key = source_model_key(config)
    path = folder / f"{key}.pt"
    torch.manual_seed(config["seed"])  # the initial weights, whatever ran before in this process
    backbone = build_backbone(config["backbone"], task.input_shape)
    with _locked(folder / f".{key}.lock"):
        if path.exists():
            try:
                return Adapter.load(path, backbone=backbone).to(device), True
            except (InputError, RuntimeError, EOFError, OSError) as exc:  # damaged: train it again
                warnings.warn(f"source model {path} cannot be read ({exc}); training it again", stacklevel=2)
                path.unlink(missing_ok=True)
        how = config["source_train"]
        model = create(BASELINE, backbone, task.num_classes, **how["hparams"])
        model.fit(task.source_train, task.target_train, seed=config["seed"], device=device, verbose=verbose,
                  **how["train"])  # fmt: skip
        model.save(path)
        return model, False


def stream(dataset: Dataset, seed: int, batch_size: int) -> DataLoader:
    """The target stream of an online run: every example once, in an order fixed by ``seed``."""
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist()
    return DataLoader(Subset(dataset, order), batch_size=batch_size, shuffle=False)


def online_scores(model: Adapter, method: str, hparams: dict[str, Any], task: Task, seed: int,
                  batch_size: int) -> dict[str, Any]:  # fmt: skip
    """Stream the target test set once through the test-time ``method`` wrapping ``model``."""
    if task.target_test is None:
        raise ValueError(f"{task.name}: the online protocol scores a labeled target stream; this target has no labels")
    model.eval()
    if method == BASELINE:
        adapter = None
    else:
        torch.manual_seed(seed)
        adapter = TEST_TIME_METHODS.get(method)(model, **hparams)
    result = evaluate_batches(adapter, model, stream(task.target_test, seed, batch_size))
    return {"accuracy": result["online_accuracy"], "accuracy_after": result["after_accuracy"],
            "stream_batches": int(result["batches"]), "stream_order_seed": seed}  # fmt: skip


def cache_folder(out: str | os.PathLike[str]) -> Path:
    return Path(out) / "source-models"
