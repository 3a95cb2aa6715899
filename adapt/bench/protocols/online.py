"""Online test-time adaptation ("online"): the cached source model (:mod:`.source_models`) is wrapped by a
test-time method, and the labeled target test set is streamed through it once, in an order fixed by the
run's seed, as the suite's ``[train]`` table says (:class:`adapt.testtime.streams.StreamConfig`: the batch
size, whether the order is shuffled or correlated by label, how many examples of each domain, and whether
the method is charged for its compute; a charged run records its ``relative_speed``). The record's
``accuracy`` is the online accuracy (each batch predicted before the method adapts on it);
``accuracy_after`` scores the adapted model on the whole stream afterwards. Target labels only ever score."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from ...data import Task
from ...data.base import TargetDomains, dataset_labels
from ...methods.base import check_loss_weights
from ...testtime import TEST_TIME_METHODS, evaluate_batches
from ...testtime import resolve_hyperparameters as resolve_test_time
from ...testtime.streams import StreamConfig, measure_relative_speed, stream_order
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
    train_table = StreamConfig

    def probe(self, name: str, hparams: dict[str, Any]) -> None:
        cls = self.method_class(name)
        preset = hparams.get("preset")
        base = {} if preset is None else cls.presets[preset]
        check_loss_weights(cls(PROBE_MODEL, **{**base, **{k: v for k, v in hparams.items() if k != "preset"}}))

    def settings(self, method: str, hparams: dict[str, Any], model: dict[str, Any],
                 train: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
        """The test-time method's settings, and the stream's (:class:`StreamConfig`, defaults filled in)."""
        stream_options = json_like(asdict(StreamConfig(**train)))
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
        domains = task.extra.get("target_domains")
        if domains is not None and task.protocol != "transductive":
            raise ValueError(f"{task.name}: a target of several domains streams under the transductive protocol only")
        config = StreamConfig(**context.config["train"])
        batches = stream(task.target_test, spec.seed, config, domains)
        speed = {}
        if config.charge_compute and adapter is not None:
            speed = {"relative_speed": measure_relative_speed(adapter, next(iter(batches))[0])}
        result = evaluate_batches(adapter, model, batches, relative_speed=speed.get("relative_speed", 1))
        return {"protocol": task.protocol, "curve": domain_curve(result, domains), "selected": None, **cached,
                "accuracy": result["online_accuracy"], "accuracy_after": result["after_accuracy"],
                "stream_batches": int(result["batches"]), "stream_order_seed": spec.seed, **speed}  # fmt: skip


def domain_curve(result: Any, domains: TargetDomains | None) -> list[dict[str, Any]]:
    """A run's ``curve`` on a target of several domains: the online accuracy on each stretch of the sequence
    (``step`` its position, from 1; ``domain`` its name), what the report's stream figure draws."""
    if domains is None:
        return []
    accuracy = result["online_accuracy_per_domain"]
    return [{"step": i + 1, "target_accuracy": accuracy[i], "domain": name} for i, name in enumerate(domains.names)]


def stream(dataset: Dataset, seed: int, config: StreamConfig, domains: TargetDomains | None = None) -> DataLoader:
    """The target stream of an online run: every example once, in an order fixed by ``seed`` (shuffled, or
    correlated by label, as ``config`` says), in batches of ``config.batch_size``. With ``domains`` (a
    target of several domains) the batches are ``(x, y, domain id)`` and the domains come in sequence or
    mixed, as ``config.domains`` says."""
    ids = None if domains is None else domains.ids
    order = stream_order(dataset_labels(dataset), config, seed, ids).tolist()
    if ids is not None:
        dataset = _WithDomains(dataset, torch.as_tensor(ids))
    return DataLoader(Subset(dataset, order), batch_size=config.batch_size, shuffle=False)


class _WithDomains(Dataset):
    """``dataset``'s ``(x, y)`` examples with their domain id appended."""

    def __init__(self, dataset: Dataset, ids: torch.Tensor) -> None:
        self.dataset, self.ids = dataset, ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        return (*self.dataset[index][:2], self.ids[index])
