"""Unsupervised domain adaptation ("uda", the default protocol): every method trains on the labeled
source and the unlabeled target, from the task's backbone, and is scored on the labeled target test set."""

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
from .base import MODEL_KEYS, MethodNameError, Protocol, RunContext, fit_and_score, register_protocol

if TYPE_CHECKING:
    from ..runner import RunSpec


@register_protocol
class UnsupervisedDomainAdaptation(Protocol):
    name = "uda"
    summary = "train on the labeled source and the unlabeled target"
    methods = METHODS
    uses_source_model = False
    sees_source = True
    suite_keys = frozenset({"target_labels", "budgets"})

    def canonical(self, name: str) -> str:
        return canonical_name(name)  # composed names too: "MMD+Entropy" -> "dan+minent"

    def method_class(self, name: str) -> type:
        return get(name)

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
        return set(METHODS) | set(METHODS.aliases()) | composed

    def suite_hyperparameters(self, name: str) -> set[str]:
        return set(self.hyperparameters(name)) - MODEL_KEYS | {"preset"}

    def probe(self, name: str, hparams: dict[str, Any]) -> None:
        check_loss_weights(create(name, nn.Identity(), 2, **hparams))

    def settings(self, method: str, hparams: dict[str, Any], model: dict[str, Any],
                 train: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
        """``create(method, **model, **hparams)`` and ``fit(**train)`` over the method's own
        ``fit_defaults`` and its preset's."""
        options = {**fit_options(method, hparams.get("preset")), **train}
        return resolve_hyperparameters(method, {**model, **hparams}), resolve_train(options)

    def revisions(self, method: str) -> dict[str, Any]:
        """The method's, each regularizer's, and pytorch-adapt's version for its implementations."""
        extras = split_composed(method)[1]
        parts = {method.split("+")[0]: get(method).revision, **{name: METHODS.get(name).revision for name in extras}}
        if method.lower().startswith("pa:"):
            parts["pytorch-adapt"] = _pytorch_adapt_version()
        return parts

    def run(self, spec: RunSpec, task: Task, context: RunContext) -> dict[str, Any]:
        torch.manual_seed(spec.seed)
        backbone = build_backbone(spec.task.backbone, task.input_shape)
        model = create(spec.method, backbone, task.num_classes, **context.hparams)
        return fit_and_score(model, (task.source_train, task.target_train), spec, task, context)


def _pytorch_adapt_version() -> str | None:
    try:
        return version("pytorch-adapt")
    except PackageNotFoundError:
        return None
