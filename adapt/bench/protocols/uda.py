"""Unsupervised domain adaptation ("uda", the default protocol): every method trains on the labeled
source and the unlabeled target, from the task's backbone, and is scored on the labeled target test set.

Beside the methods, the row ``zero_shot`` trains nothing: the backbone's own classifier (CLIP's zero-shot head
for the task's class names, or a pretrained classifier whose classes are the task's), scored as the methods are:
the baseline a foundation model sets before any source label is read."""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ...data import Task
from ...methods import create
from ...methods.base import check_loss_weights
from ...methods.registry import (
    METHODS,
    canonical_name,
    fit_options,
    get,
    resolve_hyperparameters,
    split_composed,
)
from ...train.engine import resolve_train
from ..backbones import build_backbone
from ..scoring import target_scores
from .base import BASELINE, MODEL_KEYS, MethodNameError, Protocol, RunContext, fit_and_score, register_protocol
from .source_free import unadapted_checkpoint
from .source_models import take_pretrained_head

if TYPE_CHECKING:
    from ..runner import RunSpec


#: The row that trains nothing: the backbone's own (zero-shot or pretrained) classifier.
ZERO_SHOT = "zero_shot"
ZERO_SHOT_REVISION = 1


@register_protocol
class UnsupervisedDomainAdaptation(Protocol):
    name = "uda"
    summary = "train on the labeled source and the unlabeled target"
    methods = METHODS
    uses_source_model = False
    sees_source = True
    suite_keys = frozenset({"target_labels", "budgets"})

    def canonical(self, name: str) -> str:
        return ZERO_SHOT if name == ZERO_SHOT else canonical_name(name)  # "MMD+Entropy" -> "dan+minent"

    def method_class(self, name: str) -> type:
        return get(BASELINE if name == ZERO_SHOT else name)  # zero-shot: a SourceOnly model that never trains

    def method_names(self, keys: Iterable[str]) -> set[str]:
        """Registered names and aliases, and the suite's composed ones: a method plus regularizers
        ("cdan+bsp") or pytorch-adapt's implementation ("pa:dann")."""
        composed = set()
        for key in keys:
            if "+" in key or key.lower().startswith("pa:"):
                try:
                    split_composed(key)
                except ValueError as exc:
                    raise MethodNameError(key, str(exc)) from exc
                composed.add(key)
        return set(METHODS) | set(METHODS.aliases()) | composed | {ZERO_SHOT}

    def suite_hyperparameters(self, name: str) -> set[str]:
        return set() if name == ZERO_SHOT else set(self.hyperparameters(name)) - MODEL_KEYS | {"preset"}

    def probe(self, name: str, hparams: dict[str, Any]) -> None:
        if name != ZERO_SHOT:
            check_loss_weights(create(name, nn.Identity(), 2, **hparams))

    def settings(self, method: str, hparams: dict[str, Any], model: dict[str, Any],
                 train: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
        """``create(method, **model, **hparams)`` and ``fit(**train)`` over the method's own
        ``fit_defaults`` and its preset's. The zero-shot row has the model keys (a bottleneck is refused when it
        runs) and no training."""
        if method == ZERO_SHOT:
            return resolve_hyperparameters(BASELINE, dict(model)), {}
        options = {**fit_options(method, hparams.get("preset")), **train}
        return resolve_hyperparameters(method, {**model, **hparams}), resolve_train(options)

    def revisions(self, method: str) -> dict[str, Any]:
        """The method's, each regularizer's, and pytorch-adapt's version for its implementations."""
        if method == ZERO_SHOT:
            return {ZERO_SHOT: ZERO_SHOT_REVISION}
        extras = split_composed(method)[1]
        parts = {method.split("+")[0]: get(method).revision, **{name: METHODS.get(name).revision for name in extras}}
        if method.lower().startswith("pa:"):
            parts["pytorch-adapt"] = _pytorch_adapt_version()
        return parts

    def run(self, spec: RunSpec, task: Task, context: RunContext) -> dict[str, Any]:
        torch.manual_seed(spec.seed)
        backbone = build_backbone(spec.task.backbone, task.input_shape)
        if spec.method == ZERO_SHOT:
            model = create(BASELINE, backbone, task.num_classes, **context.hparams)
            take_pretrained_head(model, task)
            model.to(context.device).eval()
            return {"curve": unadapted_checkpoint(model, spec, task, None), **target_scores(model, task, None, None)}
        model = create(spec.method, backbone, task.num_classes, **context.hparams)
        return fit_and_score(model, (task.source_train, task.target_train), spec, task, context)


def _pytorch_adapt_version() -> str | None:
    try:
        return version("pytorch-adapt")
    except PackageNotFoundError:
        return None
