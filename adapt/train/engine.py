"""The one training loop shared by every method.

A method only says how to compute its loss terms for one batch (and, rarely, how to split an
update into several optimizer steps, through :class:`Stepper`). This module owns devices, data
streams, the optimizer and schedules, mixed precision, compilation, seeding, clipping, logging,
progress bars, non-finite detection and callbacks.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ..batch import Batch
from .data import Domain, InputError, Streams, fit_inputs, make_streams
from .distributed import Shard, check_batch_size, join, sync_batch_norm
from .resume import ResumePolicy, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .schedules import LRSchedule, lr_factor


class Trainable(Protocol):
    """What the engine needs of a model (:class:`~adapt.methods.base.Adapter` is one)."""

    backbone: nn.Module
    bottleneck: nn.Module
    num_classes: int
    min_batch_size: int
    uses_target: bool
    uses_source: bool
    training: bool

    def build(self, example: torch.Tensor) -> None: ...
    def prepare_target(self, num_examples: int) -> None: ...
    def update(self, batch: Batch, progress: float, stepper: Stepper) -> dict[str, torch.Tensor]: ...
    def param_groups(self, backbone_lr_mult: float) -> list[dict[str, Any]]: ...
    def to(self, *args: Any, **kwargs: Any) -> Any: ...
    def train(self, mode: bool = True) -> Any: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state_dict: dict[str, Any]) -> Any: ...


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or inf during training."""

    def __init__(self, term: str, step: int, value: float, steps: int) -> None:
        self.term, self.step, self.value = term, step, value
        super().__init__(
            f"loss term '{term}' became non-finite ({value}) at step {step} of {steps}; "
            f"try a lower learning rate, gradient clipping (grad_clip=...) or a smaller trade-off"
        )


class Callback(Protocol):
    """Called every ``every`` steps (and after the last step) with the model in training.

    It may return a dict of numbers, which is added to that step's history row. The model is
    switched back to training mode afterwards.
    """

    every: int

    def __call__(self, step: int, model: Trainable) -> dict[str, float] | None: ...


class Logger(Protocol):
    """Receives each logged row as scalars grouped by kind (``adapt.loggers``: TensorBoard, MLflow).

    ``log(scalars, step)`` gets ``loss/<term>`` (and ``loss/total``), ``train/lr``, ``train/progress``,
    ``train/examples_per_second`` (source, target and labeled-target examples since the last row)
    and ``eval/<name>`` for whatever callbacks returned (validator scores); rank 0 only.
    ``close()`` is called once when training ends, also after an error.
    """

    def log(self, scalars: dict[str, float], step: int) -> None: ...
    def close(self) -> None: ...


@dataclass
class TrainConfig:
    """Everything the engine needs besides the method and the data.

    Defaults follow the DANN paper (Ganin et al., JMLR 2016): SGD with momentum 0.9 and the
    annealed learning rate ``0.01 / (1 + 10p)^0.75``.
    """

    steps: int = 1000
    batch_size: int = 64
    lr: float = 0.01
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    backbone_lr_mult: float = 1.0
    #: SDAT (Rangwani et al., CVPR 2022): sharpness-aware minimization of the task loss with this radius
    #: (their 0.02 to 0.05; 0: plain steps). See :meth:`Stepper.sharpness_aware_step`.
    sam_rho: float = 0.0
    lr_schedule: LRSchedule = "dann"
    seed: int | None = 0
    device: str | torch.device = "auto"
    amp: Literal["bf16", "fp16"] | None = None
    compile: bool = False
    channels_last: bool = False
    #: Fused optimizer kernels (one kernel for all parameters). None: on CUDA, where they pay off.
    fused: bool | None = None
    grad_clip: float | None = None
    log_every: int = 10
    num_workers: int = 0
    verbose: bool | None = None
    callbacks: Sequence[Callback] = field(default_factory=tuple)
    #: Experiment trackers that receive every logged row (see :class:`Logger`).
    loggers: Sequence[Logger] = field(default_factory=tuple)
    #: Mid-run checkpoints (see :mod:`adapt.train.resume`): a file to save the training state to and
    #: to resume from when it exists; saved every ``checkpoint_every`` steps and/or every
    #: ``checkpoint_seconds`` seconds (both 0: every tenth of the run), deleted when training ends.
    checkpoint_path: str | os.PathLike[str] | None = None
    checkpoint_every: int = 0
    checkpoint_seconds: float = 0.0
    #: False: leave the checkpoint for the caller to delete (a sweep deletes it once the record is written).
    checkpoint_delete: bool = True
    #: Weight of the classification loss on the labeled target examples (``fit(target_labeled=...)``),
    #: relative to the source classification loss's 1.
    labeled_target_weight: float = 1.0
    #: Data-parallel training across the processes torchrun starts (see :mod:`adapt.train.distributed`):
    #: ``batch_size`` is then the global batch per domain, split across them.
    distributed: bool = False
    #: With ``distributed``: BatchNorm statistics over the global batch (CUDA only).
    sync_batch_norm: bool = False
    #: The unlabeled target batch is this many times ``batch_size`` (MME's authors use 2); the source and
    #: labeled target batches keep ``batch_size``.
    target_batch_mult: int = 1

    def __post_init__(self) -> None:
        _coerce_numbers(self)
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.optimizer not in ("sgd", "adam", "adamw"):
            raise ValueError(f"optimizer must be 'sgd', 'adam' or 'adamw', got {self.optimizer!r}")
        if self.amp not in (None, "bf16", "fp16"):
            raise ValueError(f"amp must be None, 'bf16' or 'fp16', got {self.amp!r}")
        if self.log_every < 1:
            raise ValueError(f"log_every must be >= 1, got {self.log_every}")
        if self.checkpoint_every < 0 or self.checkpoint_seconds < 0:
            raise ValueError("checkpoint_every and checkpoint_seconds must be >= 0")
        if self.target_batch_mult < 1:
            raise ValueError(f"target_batch_mult must be >= 1, got {self.target_batch_mult}")
        if not (math.isfinite(self.sam_rho) and self.sam_rho >= 0):
            raise ValueError(f"sam_rho must be a finite number >= 0, got {self.sam_rho}")
        if not (math.isfinite(self.labeled_target_weight) and self.labeled_target_weight >= 0):
            raise ValueError(f"labeled_target_weight must be a finite number >= 0, got {self.labeled_target_weight}")
        lr_factor(self.lr_schedule, 0.0, 0)  # validates the name
        for callback in self.callbacks:
            every = getattr(callback, "every", None)
            if not isinstance(every, int) or isinstance(every, bool) or every < 1:
                raise ValueError(f"callback {type(callback).__name__} must have an integer `every` >= 1 (the steps "
                                 f"between its calls), got {every!r}")  # fmt: skip


#: TrainConfig fields that do not change what is learned: where it runs, what watches it and how it is
#: saved (the seed of a benchmark run is part of its identity apart from these).
RUNTIME_FIELDS = frozenset({"seed", "device", "verbose", "callbacks", "loggers", "log_every", "checkpoint_path",
                            "checkpoint_every", "checkpoint_seconds", "checkpoint_delete"})  # fmt: skip


def resolve_train(options: dict[str, Any]) -> dict[str, Any]:
    """Every :class:`TrainConfig` field that changes what is learned, for ``TrainConfig(**options)``:
    the defaults filled in, checked (a bad value raises as ``TrainConfig`` does). JSON-like values.

    >>> resolve_train({"lr": 0.05})["lr"], resolve_train({})["optimizer"]
    (0.05, 'sgd')
    """
    config = TrainConfig(**options)
    resolved = {name: getattr(config, name) for name in TrainConfig.__dataclass_fields__ if name not in RUNTIME_FIELDS}
    return {k: v for k, v in resolved.items() if not (k in OMITTED_AT_DEFAULT and v == OMITTED_AT_DEFAULT[k])}


#: Fields added after runs were recorded: left out of the resolved options while at their default (which
#: changes nothing), so that earlier runs keep their identity; set, they are part of it.
OMITTED_AT_DEFAULT: dict[str, Any] = {"sam_rho": 0.0}


#: TrainConfig's numeric fields: name -> (kind, may be None). numpy numbers are accepted and converted.
_NUMERIC_FIELDS = {
    "steps": ("int", False), "batch_size": ("int", False), "log_every": ("int", False), "num_workers": ("int", False),
    "seed": ("int", True), "lr": ("float", False), "momentum": ("float", False), "weight_decay": ("float", False),
    "backbone_lr_mult": ("float", False), "sam_rho": ("float", False), "grad_clip": ("float", True),
    "checkpoint_every": ("int", False),
    "checkpoint_seconds": ("float", False), "labeled_target_weight": ("float", False),
    "target_batch_mult": ("int", False),
}  # fmt: skip


def _coerce_numbers(config: TrainConfig) -> None:
    """Numbers stay numbers: ``steps=2.5`` or ``lr="0.1"`` is a TypeError naming the option."""
    for name, (kind, optional) in _NUMERIC_FIELDS.items():
        value = getattr(config, name)
        if value is None and optional:
            continue
        integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if kind == "int" and not integral:
            raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
        if kind == "float" and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
            raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
        setattr(config, name, int(value) if kind == "int" else float(value))


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' picks CUDA when available, else CPU; anything else goes to ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device {device!r} is not a torch device; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from exc
    return resolved


def usable_device(device: str | torch.device) -> torch.device:
    """:func:`resolve_device`, refusing by name a CUDA device this machine does not have."""
    resolved = resolve_device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r}: CUDA is not available on this machine (torch "
                         f"{torch.__version__}); use device='auto' or 'cpu'")  # fmt: skip
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise ValueError(f"device {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return resolved


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global RNGs (all devices).

    Call it before building a backbone so that its initialization is the same run after run;
    ``fit(seed=...)`` seeds everything that happens inside training.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Stepper:
    """What a method's :meth:`~adapt.methods.base.Adapter.update` may call.

    ``autocast()`` wraps the forward pass; ``step(loss)`` does zero-grad, (scaled) backward,
    clipping and one optimizer step. Methods with several optimizer stages per batch (MCD, ADDA)
    call ``step`` several times with ``only=`` naming the modules each stage trains: gradients of
    all other parameters are dropped before the step, so they are not updated.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        device: torch.device,
        amp: str | None,
        grad_clip: float | None,
        shard: Shard | None = None,
        sam_rho: float = 0.0,
    ) -> None:
        if sam_rho and amp == "fp16" and device.type == "cuda":
            raise ValueError("sam_rho (SDAT) does not combine with amp='fp16' (a scaled first gradient); use 'bf16'")
        self.sam_rho = sam_rho
        self.optimizer = optimizer
        self.shard = shard
        self.device = device
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, None: None}[amp]
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16" and device.type == "cuda")
        self.grad_clip = grad_clip
        self.params = [p for g in optimizer.param_groups for p in g["params"]]

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def step(self, loss: torch.Tensor | dict[str, torch.Tensor], only: Sequence[nn.Module] | None = None) -> None:
        """Zero the gradients, backpropagate ``loss`` (a tensor, or a dict of terms: their sum), keep
        only the gradients of ``only``'s parameters (all when None), clip, and take one optimizer step."""
        if isinstance(loss, dict):
            loss = torch.stack([t.float() for t in loss.values()]).sum()
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if only is not None:
            keep = {id(p) for m in only for p in m.parameters()}
            for p in self.params:
                if id(p) not in keep:
                    p.grad = None
        if self.shard is not None:  # the same averaged gradients, hence the same step, on every rank
            self.shard.average_gradients(self.params)
        if self.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def sharpness_aware_step(
        self, task_loss: torch.Tensor, terms_at: Callable[[], dict[str, torch.Tensor]], perturbed: list[nn.Parameter]
    ) -> dict[str, torch.Tensor]:
        """SDAT's step (Rangwani et al., "A Closer Look at Smoothness in Domain Adversarial Training", CVPR 2022,
        Alg. 1; val-iisc/SDAT at 33d7429, ``examples/cdan_sdat.py`` lines 213-256 with ``common/utils/sam.py``):
        the gradient of ``task_loss`` alone moves the ``perturbed`` parameters to ``w + rho g / ||g||``;
        ``terms_at()`` (every term, the adversarial ones included) is computed and backpropagated there; the
        parameters go back to ``w`` and the optimizer steps every parameter with those gradients."""
        self.optimizer.zero_grad(set_to_none=True)
        task_loss.backward()
        grads = [p.grad for p in perturbed if p.grad is not None]
        if self.shard is not None:
            self.shard.average_gradients([p for p in perturbed if p.grad is not None])
        norm = torch.norm(torch.stack([g.norm(p=2) for g in grads]), p=2) if grads else torch.tensor(0.0)
        shifts = []
        with torch.no_grad():
            for p in perturbed:
                if p.grad is not None:
                    shift = p.grad * (self.sam_rho / (norm + 1e-12)).to(p)
                    p.add_(shift)
                    shifts.append((p, shift))
        self.optimizer.zero_grad(set_to_none=True)
        terms = terms_at()
        torch.stack([t.float() for t in terms.values()]).sum().backward()
        with torch.no_grad():
            for p, shift in shifts:
                p.sub_(shift)
        if self.shard is not None:
            self.shard.average_gradients(self.params)
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.optimizer.step()
        return terms


def make_optimizer(
    param_groups: list[dict[str, Any]], config: TrainConfig, device: torch.device | None = None
) -> torch.optim.Optimizer:
    """SGD (momentum, optional Nesterov), Adam or AdamW over the method's parameter groups."""
    groups = [g for g in param_groups if g["params"]]
    for g in groups:
        g["lr"] = config.lr * g.pop("lr_mult", 1.0)
        g["initial_lr"] = g["lr"]
    fused = config.fused if config.fused is not None else (device is not None and device.type == "cuda")
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            groups,
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=config.weight_decay,
            fused=fused,
        )
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls(groups, lr=config.lr, weight_decay=config.weight_decay, fused=fused)


def _progress_bar(total: int, verbose: bool | None, desc: str) -> Any:
    show = verbose if verbose is not None else sys.stderr.isatty()
    if not show:
        return None
    return tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True, leave=True)


@contextlib.contextmanager
def _train_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.train()
    try:
        yield
    finally:
        model.train(was_training)


def _batch_norm_layers(model: Trainable) -> list[str]:
    """Names of the BatchNorm layers in the backbone and bottleneck (what every forward pass uses)."""
    return [
        f"{part}.{name}" if name else part
        for part in ("backbone", "bottleneck")
        for name, m in getattr(model, part).named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]


def smallest_batch(model: Trainable) -> int:
    """The fewest examples per domain a training batch of ``model`` may have.

    The method's own minimum (covariances and MMD need pairs) and, for a method that sends the
    source batch through the network alone (SourceOnly), 2 when the network has BatchNorm layers:
    BatchNorm cannot normalize a batch of one in training mode. Methods that concatenate source and
    target batches always give BatchNorm at least 2 examples.
    """
    need = model.min_batch_size
    if not model.uses_target and _batch_norm_layers(model):
        need = max(need, 2)
    return need


def _check_min_batch(model: Trainable, domains: list[Domain], batch_size: int) -> None:
    need = smallest_batch(model)
    for domain in domains:
        effective = domain.loader.batch_size if domain.loader is not None else min(batch_size, len(domain))
        if effective is not None and effective < need:
            why = ""
            if need > model.min_batch_size:
                layers = _batch_norm_layers(model)
                why = f" (its network has BatchNorm layers, e.g. {layers[0]!r}, which cannot normalize one example)"
            raise InputError(
                f"{type(model).__name__} needs at least {need} {domain.role} examples per batch{why}, "
                f"but batches have {effective} (batch_size={batch_size}, {len(domain)} {domain.role} examples)"
            )


class _LossLog:
    """Running means of the loss terms between logging steps, kept on the device (no host sync per
    step), and the first non-finite value of each term with its step.

    A method may return other terms in another phase of training (ADDA after its source
    pre-training): each term is averaged over the steps that returned it, and a logging window in
    which a term never appeared gives it no value (NaN in the history).
    """

    def __init__(self) -> None:
        self.names: list[str] = []
        self.running = self.counts = self.first_bad_step = self.first_bad_value = torch.zeros(0)
        self._index: dict[tuple[tuple[str, ...], int], torch.Tensor] = {}

    def _add_names(self, names: list[str], like: torch.Tensor) -> None:
        extra = len(names)
        self.names = self.names + names
        pad = lambda t, v: torch.cat([t.to(like.device), torch.full((extra,), v, device=like.device)])  # noqa: E731
        self.running, self.counts = pad(self.running, 0.0), pad(self.counts, 0.0)
        self.first_bad_step, self.first_bad_value = pad(self.first_bad_step, -1.0), pad(self.first_bad_value, 0.0)

    def add(self, terms: dict[str, torch.Tensor], step: int) -> None:
        values = torch.stack([t.detach().float().reshape(()) for t in terms.values()])
        names = list(terms)
        if names != self.names:  # another set of terms (or the first): place them by name
            self._add_names([n for n in names if n not in self.names], values)
            key = (tuple(names), len(self.names))
            if key not in self._index:  # one host-to-device copy per set of terms, not per step
                self._index[key] = torch.tensor([self.names.index(n) for n in names], device=values.device)
            index = self._index[key]
            values = torch.zeros_like(self.running).index_copy(0, index, values)
            present = torch.zeros_like(self.running).index_fill(0, index, 1.0)
        else:
            present = torch.ones_like(values)
        newly_bad = ~torch.isfinite(values) & (self.first_bad_step < 0)
        self.first_bad_step = torch.where(newly_bad, float(step), self.first_bad_step)
        self.first_bad_value = torch.where(newly_bad, values, self.first_bad_value)
        self.running = self.running + values
        self.counts = self.counts + present

    def state_dict(self) -> dict[str, Any]:
        return {"names": self.names, "running": self.running, "counts": self.counts,
                "first_bad_step": self.first_bad_step, "first_bad_value": self.first_bad_value}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.names = list(state["names"])
        self.running, self.first_bad_step, self.first_bad_value = (
            state[k].to(device) for k in ("running", "first_bad_step", "first_bad_value"))  # fmt: skip
        # checkpoints written before per-term counts held one count for every term
        counts = state.get("counts")
        self.counts = counts.to(device) if counts is not None else torch.full_like(self.running, float(state["count"]))

    def flush(self, steps: int) -> dict[str, float]:
        """The mean of each term since the last flush (and their sum, ``total``); raises on a non-finite term."""
        bad = self.first_bad_step.cpu()
        if (bad >= 0).any():
            i = int(torch.where(bad >= 0, bad, math.inf).argmin())
            raise NonFiniteLossError(self.names[i], int(bad[i]), float(self.first_bad_value[i]), steps)
        counts = self.counts.cpu()
        means = (self.running.cpu() / counts.clamp_min(1)).tolist()
        row = {name: (mean if count > 0 else math.nan) for name, mean, count in zip(self.names, means, counts.tolist())}
        self.running.zero_()
        self.counts.zero_()
        return {**row, "total": float(sum(v for v in row.values() if not math.isnan(v)))}


def _run_callbacks(callbacks: list[Callback], step: int, model: Trainable, device: torch.device) -> dict[str, float]:
    """Call each callback; what they return joins the history row."""
    rng_devices = (
        [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    )
    extra: dict[str, float] = {}
    for callback in callbacks:
        # Callbacks observe training and must not steer it: random numbers they draw (a DataLoader's
        # base seed) come from a forked generator, so a run with checkpoint selection trains exactly
        # like one without.
        with torch.random.fork_rng(devices=rng_devices):
            # plain floats: the history goes into checkpoints, which hold no numpy scalars
            extra.update({k: float(v) for k, v in (callback(step, model) or {}).items()})
        model.train()
    return extra


def _prepare(
    model: Trainable, source: Any, target: Any, config: TrainConfig, target_labeled: Any = None
) -> tuple[torch.device, Streams, torch.optim.Optimizer, Stepper]:
    """Check the data, seed, build and place the model; the batch streams, optimizer and stepper."""
    device, shard = usable_device(config.device), None
    if config.distributed:
        shard, device = join(device)
        check_batch_size(shard, config.batch_size)
        check_batch_size(shard, config.batch_size * config.target_batch_mult)
    elif config.sync_batch_norm:
        raise InputError("sync_batch_norm=True needs distributed=True")
    # a source-free method (uses_source False) trains on the target alone: there is no source stream
    inputs = fit_inputs(source, target, target_labeled, model.num_classes, source is None and not model.uses_source)
    seed = 0 if config.seed is None else config.seed
    if config.seed is not None:
        seed_everything(seed)
    model.build(inputs.example(2))
    model.prepare_target(len(inputs.target))
    model.to(device)
    if shard is not None:
        if config.sync_batch_norm:
            sync_batch_norm(model, device)  # type: ignore[arg-type]
        shard.broadcast_module(model)  # type: ignore[arg-type]
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    sizes = {"source": config.batch_size, "target": config.batch_size * config.target_batch_mult,
             "labeled target": config.batch_size}  # fmt: skip
    for domain in inputs.domains():
        _check_min_batch(model, [domain], sizes[domain.role])
    streams = make_streams(inputs, sizes, seed, device, config.num_workers, smallest_batch(model), shard)
    optimizer = make_optimizer(model.param_groups(config.backbone_lr_mult), config, device)
    if config.compile:
        model.backbone.compile()
    return device, streams, optimizer, Stepper(optimizer, device, config.amp, config.grad_clip, shard, config.sam_rho)


def _next_batch(streams: Streams, step: int, config: TrainConfig) -> Batch:
    source = next(streams.source) if streams.source is not None else None  # the source first, as always
    xt, _, target_index = next(streams.target)
    if source is None:  # a source-free method: empty source tensors, so no source example can reach it
        source = (xt.new_empty((0, *xt.shape[1:])), torch.empty(0, dtype=torch.long, device=xt.device), None)
    xl, yl, _ = next(streams.labeled_target) if streams.labeled_target is not None else (None, None, None)
    xs, ys, _ = source
    if config.channels_last and xs.ndim == 4:
        xs = xs.contiguous(memory_format=torch.channels_last)
        xt = xt.contiguous(memory_format=torch.channels_last)
        xl = xl.contiguous(memory_format=torch.channels_last) if xl is not None else None
    assert ys is not None
    return Batch(xs, ys, xt, step, target_index, xl, yl, config.labeled_target_weight)


def train(model: Trainable, source: Any, target: Any, config: TrainConfig, target_labeled: Any = None) -> pd.DataFrame:
    """Train ``model`` on labeled ``source`` and unlabeled ``target`` (and labeled target examples
    ``target_labeled``, when given: a third batch stream); return the history.

    The history has one row per logged step: ``step``, ``progress``, ``lr``, ``seconds``, one
    column per loss term (mean over the logging interval), ``total``, and whatever callbacks
    returned. With ``config.checkpoint_path`` the run checkpoints as it goes and, started again
    after a crash, continues from its last checkpoint to the same result.
    """
    device, streams, optimizer, stepper = _prepare(model, source, target, config, target_labeled)
    run = _RunState(model, streams, optimizer, stepper, config)
    steps = config.steps
    main = stepper.shard is None or stepper.shard.is_main  # rank 0 logs, checkpoints and runs callbacks
    bar = _progress_bar(steps, config.verbose if main else False, type(model).__name__)
    if bar is not None:
        bar.update(run.first_step)
    try:
        with _train_mode(model):
            for step in range(run.first_step, steps):
                progress = step / steps
                factor = lr_factor(config.lr_schedule, progress, step)
                for group in optimizer.param_groups:
                    group["lr"] = group["initial_lr"] * factor
                batch = _next_batch(streams, step, config)
                run.log.add(model.update(batch, progress, stepper), step)

                last = step == steps - 1
                callbacks_due = [c for c in config.callbacks if (step + 1) % c.every == 0 or last]
                if (step + 1) % config.log_every == 0 or last or callbacks_due:
                    if stepper.shard is not None:
                        stepper.shard.average_(run.log.running)
                    row = {"step": step + 1, "progress": (step + 1) / steps, "lr": optimizer.param_groups[-1]["lr"],
                           "seconds": run.elapsed(), **run.log.flush(steps)}  # fmt: skip
                    if bar is not None:
                        bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k in run.log.names}, refresh=False)
                    extra = _run_callbacks(callbacks_due, step + 1, model, device) if main else {}
                    run.rows.append({**row, **extra})
                    if main and config.loggers:
                        run.send_to_loggers(row, extra)
                if not last:
                    run.checkpoint_if_due(step + 1)
                if bar is not None:
                    bar.update(1)
    finally:
        run.close()
        for logger in config.loggers if main else ():
            logger.close()
        if bar is not None:
            bar.close()
    run.finished()
    history = pd.DataFrame(run.rows)
    history.attrs["resumed_from_step"] = run.first_step  # 0 unless a mid-run checkpoint was resumed
    return history


def _keyed(callbacks: Sequence[Callback]) -> list[tuple[str, Callback]]:
    """Callbacks keyed by class name and rank among those of that class: a resumed run finds each
    one's saved state even when the list around it differs."""
    seen: dict[str, int] = {}
    keyed = []
    for callback in callbacks:
        name = type(callback).__name__
        keyed.append((f"{name}#{seen.get(name, 0)}", callback))
        seen[name] = seen.get(name, 0) + 1
    return keyed


class _RunState:
    """The parts of a run a mid-run checkpoint saves, and the saving and resuming themselves."""

    def __init__(self, model: Trainable, streams: Streams, optimizer: torch.optim.Optimizer, stepper: Stepper,
                 config: TrainConfig) -> None:  # fmt: skip
        self.model, self.streams, self.optimizer, self.stepper, self.config = model, streams, optimizer, stepper, config
        self.rows: list[dict[str, float]] = []
        self.log = _LossLog()
        self.first_step, self.offset, self.start = 0, 0.0, time.perf_counter()
        self.last_logged = (0, 0.0)  # step and seconds of the last row sent to the loggers
        self.threads_before: int | None = None
        self.policy = None
        if config.checkpoint_path is not None:
            every = config.checkpoint_every or (0 if config.checkpoint_seconds else max(1, config.steps // 10))
            self.policy = ResumePolicy(Path(config.checkpoint_path), every, config.checkpoint_seconds)
            saved = load_checkpoint(self.policy.path, self.fingerprint())
            if saved is not None:
                self.restore(saved)

    def elapsed(self) -> float:
        return self.offset + time.perf_counter() - self.start

    def fingerprint(self) -> dict[str, Any]:
        """What must match for a checkpoint to be resumed: the method, its settings, the run's settings."""
        skip = {"callbacks", "loggers", "verbose", "device", "num_workers", "checkpoint_path", "checkpoint_every",
                "checkpoint_seconds", "checkpoint_delete", "distributed"}  # fmt: skip
        settings = {k: repr(v) for k, v in vars(self.config).items() if k not in skip}
        if not self.config.sync_batch_norm:  # (absent unless used: older checkpoints still resume)
            settings.pop("sync_batch_norm")
        if self.config.target_batch_mult == 1:  # likewise
            settings.pop("target_batch_mult")
        params = getattr(self.model, "get_params", dict)()
        fingerprint = {"method": type(self.model).__name__, "params": repr(sorted(params.items())), **settings}
        if self.streams.labeled_target is not None:  # (absent otherwise: older checkpoints still resume)
            fingerprint["labeled_target"] = "yes"
        if self.stepper.shard is not None:
            fingerprint["processes"] = str(self.stepper.shard.world)
        return fingerprint

    def send_to_loggers(self, row: dict[str, float], extra: dict[str, float]) -> None:
        """The row, grouped by kind, with the throughput since the previous row, to every logger."""
        step, seconds = int(row["step"]), float(row["seconds"])
        last_step, last_seconds = self.last_logged
        streams = [s for s in (self.streams.source, self.streams.labeled_target) if s is not None]
        per_step = self.config.batch_size * (len(streams) + self.config.target_batch_mult)
        examples = (step - last_step) * per_step
        scalars = {f"loss/{name}": row[name] for name in [*self.log.names, "total"] if name in row}
        scalars.update({"train/lr": row["lr"], "train/progress": row["progress"],
                        "train/examples_per_second": examples / max(seconds - last_seconds, 1e-9)})  # fmt: skip
        scalars.update({f"eval/{k}": v for k, v in extra.items()})
        for logger in self.config.loggers:
            logger.log({k: float(v) for k, v in scalars.items() if math.isfinite(v)}, step)
        self.last_logged = (step, seconds)

    def checkpoint_if_due(self, step: int) -> None:
        if self.policy is None or not self.policy.due(step):
            return
        if self.stepper.shard is not None and not self.stepper.shard.is_main:
            self.policy.last_save = time.perf_counter()
            return
        callbacks = {key: c.state_dict() for key, c in _keyed(self.config.callbacks) if hasattr(c, "state_dict")}
        save_checkpoint(self.policy.path, {
            "fingerprint": self.fingerprint(), "step": step, "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scaler": self.stepper.scaler.state_dict(),
            "streams": self.streams.state_dict(), "rng": rng_state(self.stepper.device), "log": self.log.state_dict(),
            "rows": self.rows, "callbacks": callbacks, "elapsed": self.elapsed(), "threads": torch.get_num_threads(),
        })  # fmt: skip
        self.policy.last_save = time.perf_counter()

    def restore(self, saved: dict[str, Any]) -> None:
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.stepper.scaler.load_state_dict(saved["scaler"])
        self.streams.load_state_dict(saved["streams"])
        self.log.load_state_dict(saved["log"], self.stepper.device)
        for key, callback in _keyed(self.config.callbacks):
            if key in saved["callbacks"] and hasattr(callback, "load_state_dict"):
                callback.load_state_dict(saved["callbacks"][key])
        set_rng_state(saved["rng"], self.stepper.device)
        # the thread count changes results in the last digits: continue with the checkpointed run's
        self.threads_before = torch.get_num_threads()
        torch.set_num_threads(int(saved["threads"]))
        self.rows, self.first_step, self.offset = list(saved["rows"]), int(saved["step"]), float(saved["elapsed"])
        self.last_logged = (self.first_step, self.offset)

    def finished(self) -> None:
        """The run is over: its checkpoint is no longer needed (unless the caller deletes it)."""
        if self.policy is not None and self.config.checkpoint_delete:
            self.policy.path.unlink(missing_ok=True)

    def close(self) -> None:
        """Give back the thread count a resume changed."""
        if self.threads_before is not None:
            torch.set_num_threads(self.threads_before)
