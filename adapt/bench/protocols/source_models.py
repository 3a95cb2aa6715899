"""The source models of the source-free and online protocols: trained once per task and seed, cached.

A source model is SourceOnly trained on the labeled source with the suite's ``[source]`` settings,
saved under ``<out>/source-models/<hash>.pt`` keyed by everything that determines it (resolved as a
run's identity is: defaults and revisions included); parallel runs of one task and seed share it.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch

from ..._files import claim
from ...data import Task
from ...errors import InputError
from ...methods import create
from ...methods.base import Adapter
from ..backbones import build_backbone
from ..records import digest
from .base import BASELINE, RunContext


def source_model_key(config: dict[str, Any]) -> str:
    """The cache key of a run's source model, from the run's resolved configuration
    (:func:`adapt.bench.identity.resolve`): the task, its data, backbone, how SourceOnly is trained
    (hyperparameters and training options, defaults included), the seed, and the revisions of the
    library, backbone and benchmark."""
    keys = ("benchmark", "source", "target", "protocol", "data", "backbone", "source_train", "seed", "source_holdout")
    revisions = {k: config["revisions"][k] for k in ("library", "backbone", "benchmark")}
    return digest({**{k: config.get(k) for k in keys}, "revisions": revisions})


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
    # one process at a time: parallel runs of one task and seed share the model (without fcntl, on
    # Windows, parallel runs may each train it, to the same weights)
    with claim(folder / f".{key}.lock", wait=True):
        if path.exists():
            try:
                return Adapter.load(path, backbone=backbone).to(device), True
            except (InputError, RuntimeError, EOFError, OSError) as exc:  # damaged: train it again
                warnings.warn(f"source model {path} cannot be read ({exc}); training it again", stacklevel=2)
                path.unlink(missing_ok=True)
        how = config["source_train"]
        model = create(BASELINE, backbone, task.num_classes, **how["hparams"])
        if how.get("pretrained"):
            take_pretrained_head(model, task)
        else:
            model.fit(task.source_train, task.target_train, seed=config["seed"], device=device, verbose=verbose,
                      **how["train"])  # fmt: skip
        model.save(path)
        return model.to(device), False


def take_pretrained_head(model: Adapter, task: Task) -> None:
    """Make ``model`` its backbone's pretrained classifier (``[source] pretrained = true``): its classification
    layer takes the backbone's pretrained one, whose classes must be the task's, in order."""
    model.build(torch.zeros(2, *task.input_shape))
    zero_shot = getattr(model.backbone, "zero_shot_head", None)  # CLIP: a classifier for the task's class names
    head = zero_shot(task.classes) if callable(zero_shot) else getattr(model.backbone, "pretrained_head", None)
    if head is None:
        raise InputError(f"a pretrained source model is its backbone's own classifier, and this backbone "
                         f"({type(model.backbone).__name__}) has no pretrained one: use a torchvision ResNet with "
                         "weights (kind = 'resnet50', weights = 'IMAGENET1K_V1') or a wide ResNet with its "
                         "checkpoint (kind = 'wide_resnet', checkpoint = '<RobustBench's Standard.pt>'), or CLIP "
                         "(kind = 'clip': its zero-shot head for the task's class names)")  # fmt: skip
    weight, bias = head
    if not isinstance(model.bottleneck, torch.nn.Identity) or model.classifier.weight.shape != weight.shape:
        raise InputError(f"the backbone's pretrained classifier has {weight.shape[0]} classes on {weight.shape[1]} "
                         f"features; {task.name} has {task.num_classes} classes (and the model a bottleneck: "
                         f"{not isinstance(model.bottleneck, torch.nn.Identity)}): a pretrained source model needs "
                         "the classes it was trained on, in its order, and no bottleneck")  # fmt: skip
    with torch.no_grad():
        model.classifier.weight.copy_(weight)
        model.classifier.bias.copy_(bias)


def cache_folder(out: str | os.PathLike[str]) -> Path:
    return Path(out) / "source-models"


def cached_source_model(task: Task, context: RunContext) -> tuple[Adapter, dict[str, Any]]:
    """The run's source model (see :func:`source_model`) and the record field saying whether it was cached."""
    model, cached = source_model(context.config, task, context.source_models, context.device, context.verbose)
    return model, {"source_model_cached": cached}
