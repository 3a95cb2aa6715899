"""Source-free adaptation ("source-free"): a source model is trained once per task and seed
(:mod:`.source_models`), and every source-free method of the suite adapts a copy of it with the target
alone (``Method.from_source(model).fit(target)``). The ``source_only`` entry scores that model unadapted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ...data import Task
from ...methods.base import check_loss_weights
from ...methods.registry import SOURCE_FREE_METHODS
from ...train.engine import resolve_train
from ..scoring import callbacks_for, source_calibration, target_scores
from .base import BASELINE, Protocol, RunContext, fit_and_score, json_like, register_protocol
from .source_models import cached_source_model

if TYPE_CHECKING:
    from ..runner import RunSpec

#: Hyperparameters a source-free method takes from the source model it adapts, not from the suite.
FROM_SOURCE = ("feature_dim", "bottleneck_dim", "regularizers")


@register_protocol
class SourceFree(Protocol):
    name = "source-free"
    summary = "adapt a trained model with the target alone"
    methods = SOURCE_FREE_METHODS
    suite_keys = frozenset({"source", "budgets"})

    def probe(self, name: str, hparams: dict[str, Any]) -> None:
        preset = hparams.get("preset")
        base = {} if preset is None else self.method_class(name).preset(preset)[0]
        given = {k: v for k, v in hparams.items() if k != "preset"}
        check_loss_weights(self.method_class(name)(nn.Identity(), 2, **base, **given))

    def settings(self, method: str, hparams: dict[str, Any], model: dict[str, Any],
                 train: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
        """``from_source(model, **hparams)`` (width and bottleneck come from the source model) and
        ``fit(**train)`` over the method's ``fit_defaults`` and its preset's; the baseline has neither."""
        if self.canonical(method) == BASELINE:
            return {}, {}
        cls = self.methods.get(method)
        preset = hparams.get("preset")
        settings, fit = cls.preset(preset) if preset is not None else ({}, {})
        defaults = {k: v for k, v in cls.hyperparameter_defaults().items() if k not in FROM_SOURCE}
        given = {k: v for k, v in hparams.items() if k != "preset"}
        return json_like({**defaults, **settings, **given}), resolve_train({**cls.fit_defaults, **fit, **train})

    def run(self, spec: RunSpec, task: Task, context: RunContext) -> dict[str, Any]:
        model, cached = cached_source_model(task, context)
        calibration = source_calibration(model, task, spec.validators)  # before any adaptation
        method = self.canonical(spec.method)
        if method == BASELINE:
            return {"curve": unadapted_checkpoint(model, spec, task, calibration), **cached,
                    **target_scores(model, task, None, None)}  # fmt: skip
        model = self.methods.get(method).from_source(model, **context.hparams)
        return {**fit_and_score(model, (task.target_train,), spec, task, context, calibration), **cached}


def unadapted_checkpoint(model: Any, spec: RunSpec, task: Task,
                         calibration: tuple[torch.Tensor, torch.Tensor] | None) -> list[dict[str, Any]]:  # fmt: skip
    """The source model's one checkpoint (step 0) when the suite has validators, scored as an adapted
    model's are, so that the estimators' errors and the guard have the unadapted model too."""
    if not spec.validators:
        return []
    callbacks, _ = callbacks_for(spec.validators, None, spec.eval_every, task, calibration)
    point: dict[str, Any] = {"step": 0}
    for callback in callbacks:
        point.update(callback(0, model))
    return [point]
