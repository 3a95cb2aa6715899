"""Online test-time adaptation ("online"): the cached source model (:mod:`.source_models`) is wrapped by a
test-time method, and the labeled target test set is streamed through it once, in an order fixed by the
run's seed, in batches of the suite's ``train.batch_size``. The record's ``accuracy`` is the online
accuracy (each batch predicted before the method adapts on it); ``accuracy_after`` scores the adapted
model on the whole stream afterwards. Target labels only ever score."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from ...data import Task
from ...methods.base import check_loss_weights
from ...testtime import TEST_TIME_METHODS, evaluate_batches
from ...testtime import resolve_hyperparameters as resolve_test_time
from .base import BASELINE, Protocol, RunContext, json_like, register_protocol
from .source_models import cached_source_model

if TYPE_CHECKING:
    from ..runner import RunSpec

#: A model with both kinds of BatchNorm, for test-time methods to check their settings on.
PROBE_MODEL = nn.Sequential(nn.BatchNorm1d(2), nn.BatchNorm2d(2))


@register_protocol
class Online(Protocol):
    name = "online"
    summary = "test-time: adapt while predicting a stream"
    methods = TEST_TIME_METHODS
    trains_on_target = False

    def probe(self, name: str, hparams: dict[str, Any]) -> None:
        cls = self.method_class(name)
        preset = hparams.get("preset")
        base = {} if preset is None else cls.presets[preset]
        check_loss_weights(cls(PROBE_MODEL, **{**base, **{k: v for k, v in hparams.items() if k != "preset"}}))

    def settings(self, method: str, hparams: dict[str, Any], model: dict[str, Any],
                 train: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
        """The test-time method's settings; the only training option is the stream's batch size."""
        stream_options = {"batch_size": int(train.get("batch_size", 64))}
        if self.canonical(method) == BASELINE:
            return {}, stream_options
        return json_like(resolve_test_time(method, hparams)), stream_options

    def run(self, spec: RunSpec, task: Task, context: RunContext) -> dict[str, Any]:
        if task.target_test is None:
            raise ValueError(f"{task.name}: the online protocol scores a labeled target stream; this target has "
                             "no labels")  # fmt: skip
        model, cached = cached_source_model(task, context)
        model.eval()
        method = self.canonical(spec.method)
        torch.manual_seed(spec.seed)
        adapter = None if method == BASELINE else self.methods.get(method)(model, **context.hparams)
        result = evaluate_batches(adapter, model, stream(task.target_test, spec.seed, context.train["batch_size"]))
        return {"protocol": task.protocol, "curve": [], "selected": None, **cached,
                "accuracy": result["online_accuracy"], "accuracy_after": result["after_accuracy"],
                "stream_batches": int(result["batches"]), "stream_order_seed": spec.seed}  # fmt: skip


def stream(dataset: Dataset, seed: int, batch_size: int) -> DataLoader:
    """The target stream of an online run: every example once, in an order fixed by ``seed``."""
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist()
    return DataLoader(Subset(dataset, order), batch_size=batch_size, shuffle=False)
