"""The one training loop shared by every method.

A method only says how to compute its loss terms for one batch (and, rarely, how to split an
update into several optimizer steps, through :class:`Stepper`). This module owns devices, data
streams, the optimizer and schedules, mixed precision, compilation, seeding, clipping, logging,
progress bars, non-finite detection and callbacks.
"""

from __future__ import annotations

import contextlib
import math
import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import pandas as pd
import torch
from torch import nn

from .data import Domain, InputError, as_domain, batch_stream, check_compatible
from .schedules import LRSchedule, lr_factor

if TYPE_CHECKING:
    from ..methods.base import Adapter


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or inf during training."""

    def __init__(self, term: str, step: int, value: float, steps: int) -> None:
        self.term, self.step, self.value = term, step, value
        super().__init__(
            f"loss term '{term}' became non-finite ({value}) at step {step} of {steps}; "
            f"try a lower learning rate, gradient clipping (grad_clip=...) or a smaller trade-off"
        )


@dataclass
class Batch:
    """One training batch: labeled source inputs and unlabeled target inputs, on the device.

    ``step`` is the batch's index in training (0 for the first update), for step-driven schedules.
    """

    source_x: torch.Tensor
    source_y: torch.Tensor
    target_x: torch.Tensor
    step: int = 0


class Callback(Protocol):
    """Called every ``every`` steps (and after the last step) with the model in training.

    It may return a dict of numbers, which is added to that step's history row. The model is
    switched back to training mode afterwards.
    """

    every: int

    def __call__(self, step: int, model: Adapter) -> dict[str, float] | None: ...


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
    lr_schedule: LRSchedule = "dann"
    seed: int | None = 0
    device: str | torch.device = "auto"
    amp: Literal["bf16", "fp16"] | None = None
    compile: bool = False
    channels_last: bool = False
    grad_clip: float | None = None
    log_every: int = 10
    num_workers: int = 0
    verbose: bool | None = None
    callbacks: Sequence[Callback] = field(default_factory=tuple)

    def __post_init__(self) -> None:
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
        lr_factor(self.lr_schedule, 0.0, 0)  # validates the name


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' picks CUDA when available, else CPU; anything else goes to ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices)."""
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
    ) -> None:
        self.optimizer = optimizer
        self.device = device
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, None: None}[amp]
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16" and device.type == "cuda")
        self.grad_clip = grad_clip
        self.params = [p for g in optimizer.param_groups for p in g["params"]]

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def step(self, loss: torch.Tensor, only: Sequence[nn.Module] | None = None) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if only is not None:
            keep = {id(p) for m in only for p in m.parameters()}
            for p in self.params:
                if id(p) not in keep:
                    p.grad = None
        if self.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()


def make_optimizer(param_groups: list[dict[str, Any]], config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (momentum, optional Nesterov), Adam or AdamW over the method's parameter groups."""
    groups = [g for g in param_groups if g["params"]]
    for g in groups:
        g["lr"] = config.lr * g.pop("lr_mult", 1.0)
        g["initial_lr"] = g["lr"]
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            groups,
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=config.weight_decay,
        )
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls(groups, lr=config.lr, weight_decay=config.weight_decay)


def _progress_bar(total: int, verbose: bool | None, desc: str) -> Any:
    show = verbose if verbose is not None else sys.stderr.isatty()
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True, leave=True)


@contextlib.contextmanager
def _train_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.train()
    try:
        yield
    finally:
        model.train(was_training)


def _batch_norm_layers(model: Adapter) -> list[str]:
    """Names of the BatchNorm layers in the backbone and bottleneck (what every forward pass uses)."""
    return [
        f"{part}.{name}" if name else part
        for part in ("backbone", "bottleneck")
        for name, m in getattr(model, part).named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]


def smallest_batch(model: Adapter) -> int:
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


def _check_min_batch(model: Adapter, source: Domain, target: Domain, batch_size: int) -> None:
    need = smallest_batch(model)
    for domain in (source, target):
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


def train(model: Adapter, source: Any, target: Any, config: TrainConfig) -> pd.DataFrame:
    """Train ``model`` on labeled ``source`` and unlabeled ``target``; return the history.

    The history has one row per logged step: ``step``, ``progress``, ``lr``, ``seconds``, one
    column per loss term (mean over the logging interval), ``total``, and whatever callbacks
    returned.
    """
    device = resolve_device(config.device)
    src = as_domain(source, "source", labeled=True, num_classes=model.num_classes)
    tgt = as_domain(target, "target", labeled=False)
    check_compatible(src, tgt)

    seed = 0 if config.seed is None else config.seed
    if config.seed is not None:
        seed_everything(seed)
    model.build(src.example(2))
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    _check_min_batch(model, src, tgt, config.batch_size)

    generator = torch.Generator().manual_seed(seed)
    # A user DataLoader may end an epoch with a ragged batch too small for the method: it is skipped.
    need = smallest_batch(model)
    source_batches = batch_stream(src, config.batch_size, generator, device, config.num_workers, need)
    target_batches = batch_stream(tgt, config.batch_size, generator, device, config.num_workers, need)

    optimizer = make_optimizer(model.param_groups(config.backbone_lr_mult), config)
    stepper = Stepper(optimizer, device, config.amp, config.grad_clip)
    if config.compile:
        model.backbone.compile()

    steps = config.steps
    rng_devices = (
        [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    )
    rows: list[dict[str, float]] = []
    names: list[str] | None = None
    running = first_bad_step = first_bad_value = None
    count = 0
    start = time.perf_counter()
    bar = _progress_bar(steps, config.verbose, type(model).__name__)
    try:
        with _train_mode(model):
            for step in range(steps):
                progress = step / steps
                factor = lr_factor(config.lr_schedule, progress, step)
                for group in optimizer.param_groups:
                    group["lr"] = group["initial_lr"] * factor
                xs, ys = next(source_batches)
                xt, _ = next(target_batches)
                if config.channels_last and xs.ndim == 4:
                    xs = xs.contiguous(memory_format=torch.channels_last)
                    xt = xt.contiguous(memory_format=torch.channels_last)
                assert ys is not None
                terms = model.update(Batch(xs, ys, xt, step), progress, stepper)

                # Book-keeping stays on the device: no host sync until the logging step.
                values = torch.stack([t.detach().float().reshape(()) for t in terms.values()])
                if names is None:
                    names = list(terms)
                    running = torch.zeros_like(values)
                    first_bad_step = torch.full_like(values, -1.0)
                    first_bad_value = torch.zeros_like(values)
                assert running is not None and first_bad_step is not None and first_bad_value is not None
                newly_bad = ~torch.isfinite(values) & (first_bad_step < 0)
                first_bad_step = torch.where(newly_bad, float(step), first_bad_step)
                first_bad_value = torch.where(newly_bad, values, first_bad_value)
                running = running + values
                count += 1

                last = step == steps - 1
                callbacks_due = [c for c in config.callbacks if (step + 1) % c.every == 0 or last]
                if (step + 1) % config.log_every == 0 or last or callbacks_due:
                    bad = first_bad_step.cpu()
                    if (bad >= 0).any():
                        i = int(torch.where(bad >= 0, bad, math.inf).argmin())
                        raise NonFiniteLossError(names[i], int(bad[i]), float(first_bad_value[i]), steps)
                    means = (running / count).tolist()
                    row: dict[str, float] = {
                        "step": step + 1,
                        "progress": (step + 1) / steps,
                        "lr": optimizer.param_groups[-1]["lr"],
                        "seconds": time.perf_counter() - start,
                    }
                    row.update(dict(zip(names, means)))
                    row["total"] = float(sum(means))
                    for callback in callbacks_due:
                        # Callbacks observe training and must not steer it: random numbers they draw (a
                        # DataLoader's base seed) come from a forked generator, so a run with checkpoint
                        # selection trains exactly like one without.
                        with torch.random.fork_rng(devices=rng_devices):
                            extra = callback(step + 1, model)
                        model.train()
                        if extra:
                            row.update(extra)
                    rows.append(row)
                    running.zero_()
                    count = 0
                    if bar is not None:
                        bar.set_postfix({k: f"{v:.3g}" for k, v in zip(names, means)}, refresh=False)
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return pd.DataFrame(rows)
