"""RoTTA: robust test-time adaptation in changing environments (Yuan et al., CVPR 2023)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import InputError
from .augment import InputScale, check_batch, resolve_augment
from .base import TEST_TIME_METHODS, TestTimeAdapter, make_optimizer


class RobustBatchNorm(nn.Module):
    """A BatchNorm layer whose statistics follow the stream: in training mode each batch moves the source's
    running estimates by ``momentum`` towards the batch's own and normalizes by the result (gradients flow
    through the batch's share); in eval mode the estimates normalize as they are."""

    def __init__(self, layer: nn.modules.batchnorm._BatchNorm, momentum: float) -> None:
        super().__init__()
        if layer.running_mean is None or layer.running_var is None:
            raise InputError("RoTTA's robust BatchNorm starts from the source's running statistics, and a "
                             f"BatchNorm layer ({layer}) has none (track_running_stats=False)")  # fmt: skip
        self.momentum, self.eps = momentum, layer.eps
        self.register_buffer("mean", layer.running_mean.detach().clone())
        self.register_buffer("var", layer.running_var.detach().clone())
        affine = layer.weight is not None
        self.weight = nn.Parameter(layer.weight.detach().clone()) if affine else None
        self.bias = nn.Parameter(layer.bias.detach().clone()) if affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1, *([1] * (x.ndim - 2)))
        if self.training:
            batch_var, batch_mean = torch.var_mean(x, dim=[0, *range(2, x.ndim)], unbiased=False)
            mean = (1 - self.momentum) * self.mean + self.momentum * batch_mean
            var = (1 - self.momentum) * self.var + self.momentum * batch_var
            self.mean, self.var = mean.detach().clone(), var.detach().clone()
        else:
            mean, var = self.mean, self.var
        x = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        return x if self.weight is None else x * self.weight.view(shape) + self.bias.view(shape)


@dataclass
class MemoryItem:
    data: torch.Tensor
    uncertainty: float
    age: int = 0


class CategoryBalancedMemory:
    """RoTTA's category-balanced sampling with timeliness and uncertainty (CSTU): at most ``capacity``
    samples, about ``capacity / classes`` per predicted class; a new sample replaces the stored one with the
    highest score :math:`\\lambda_t \\sigma(\\text{age}/N) + \\lambda_u H / \\ln C` (of its class when
    that class is full, else of the most held classes when the memory is) if that score is higher than its
    own; every stored sample ages by one per arrival."""

    def __init__(self, capacity: int, classes: int, lambda_t: float = 1.0, lambda_u: float = 1.0) -> None:
        self.capacity, self.classes, self.lambda_t, self.lambda_u = capacity, classes, lambda_t, lambda_u
        self.per_class = capacity / classes
        self.items: list[list[MemoryItem]] = [[] for _ in range(classes)]

    def __len__(self) -> int:
        return sum(len(held) for held in self.items)

    def score(self, age: int, uncertainty: float) -> float:
        timeliness = 1 / (1 + math.exp(-age / self.capacity))
        return self.lambda_t * timeliness + self.lambda_u * uncertainty / math.log(self.classes)

    def add(self, data: torch.Tensor, label: int, uncertainty: float) -> None:
        if self._make_room(label, self.score(0, uncertainty)):
            self.items[label].append(MemoryItem(data, uncertainty))
        for held in self.items:
            for item in held:
                item.age += 1

    def _make_room(self, label: int, new_score: float) -> bool:
        if len(self.items[label]) >= self.per_class:
            return self._drop_worst([label], new_score)
        if len(self) < self.capacity:
            return True
        most = max(len(held) for held in self.items)
        return self._drop_worst([c for c, held in enumerate(self.items) if len(held) == most], new_score)

    def _drop_worst(self, classes: list[int], new_score: float) -> bool:
        worst: tuple[float, int, int] | None = None  # score, class, index; the last of equal scores
        for c in classes:
            for i, item in enumerate(self.items[c]):
                score = self.score(item.age, item.uncertainty)
                if worst is None or score >= worst[0]:
                    worst = (score, c, i)
        if worst is None:
            return True
        if worst[0] > new_score:
            self.items[worst[1]].pop(worst[2])
            return True
        return False

    def samples(self) -> tuple[list[torch.Tensor], list[float]]:
        """The stored inputs, class by class, and their ages as fractions of the capacity."""
        items = [item for held in self.items for item in held]
        return [item.data for item in items], [item.age / self.capacity for item in items]


@TEST_TIME_METHODS.register("rotta")
class RoTTA(TestTimeAdapter):
    """A mean teacher that predicts, a student trained on a category-balanced memory of the stream, and
    BatchNorm statistics that follow the stream slowly.

    Yuan, Xie & Li, "Robust Test-Time Adaptation in Dynamic Scenarios", CVPR 2023. BatchNorm layers become
    :class:`RobustBatchNorm` (momentum ``bn_momentum``); the teacher, an exponential moving average of the
    student (momentum ``teacher_momentum``), predicts each batch; each sample enters the
    :class:`CategoryBalancedMemory` under the teacher's label and entropy. Every ``update_frequency``
    samples the student takes one Adam step on the memory: the cross-entropy between the teacher's softmax
    on a sample and the student's prediction on its strongly augmented view, weighted by the sample's
    timeliness :math:`e^{-a}/(1 + e^{-a})` (age :math:`a` in capacities); the teacher then follows. The
    affine parameters of the robust BatchNorm, LayerNorm and GroupNorm layers adapt: any normalization.

    Follows the reference benchmark's code (mariodoebler/test-time-adaptation at 8b2ed63, ``classification/
    methods/rotta.py`` lines 17-341, from BIT-DA/RoTTA; ``conf.py`` lines 246-254: memory 64, update every
    64 samples, nu 0.001, alpha 0.05; ``cfgs/cifar10_c/rotta.yaml``: Adam, lr 1e-3). Their step without
    mixed precision (line 87) passes the batch to ``loss_calculation``, which takes none: the library
    computes the loss as their mixed-precision branch does (line 81). The strong augmentation is theirs
    (:func:`adapt.testtime.augment.authors_augmentation`, images in [0, 1] or ``input_scale="imagenet"``).

    Parameters
    ----------
    model : a trained classifier with normalization layers (deep-copied); its BatchNorm layers need
        running statistics.
    memory_size : the memory's capacity (64).
    update_frequency : samples between student steps (64).
    teacher_momentum : the teacher's EMA momentum, 1 - nu (0.999).
    bn_momentum : how far each batch moves the robust BatchNorm statistics, alpha (0.05).
    lambda_t, lambda_u : the memory's weights of age and uncertainty (1, 1).
    lr, optimizer, momentum, nesterov : the step (:func:`adapt.testtime.base.make_optimizer`): Adam, lr 1e-3,
        betas (0.9, 0.999), as their CIFAR and ImageNet-C configurations.
    augment : ``"authors"`` (default), ``"none"``, or a callable on a batch: the student's strong view.
    input_scale : what the model takes, for the authors' augmentation: ``"unit"`` or ``"imagenet"``.
    """

    name = "rotta"
    paper = "Yuan et al., CVPR 2023"
    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(
        self,
        model: nn.Module,
        *,
        memory_size: int = 64,
        update_frequency: int = 64,
        teacher_momentum: float = 0.999,
        bn_momentum: float = 0.05,
        lambda_t: float = 1.0,
        lambda_u: float = 1.0,
        lr: float = 1e-3,
        optimizer: str = "adam",
        momentum: float = 0.9,
        nesterov: bool = False,
        augment: Any = "authors",
        input_scale: InputScale = "unit",
    ) -> None:
        super().__init__(model)
        for name, value in (("memory_size", memory_size), ("update_frequency", update_frequency)):
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name, value in (("teacher_momentum", teacher_momentum), ("bn_momentum", bn_momentum)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        self.memory_size, self.update_frequency = int(memory_size), int(update_frequency)
        self.teacher_momentum, self.lambda_t, self.lambda_u = teacher_momentum, lambda_t, lambda_u
        self.augment = resolve_augment(augment, input_scale)
        params = self._use_robust_batch_norm(bn_momentum)
        self.teacher = copy.deepcopy(self.model).requires_grad_(False)
        self.optimizer = make_optimizer(params, optimizer, lr, momentum, nesterov)
        self.memory: CategoryBalancedMemory | None = None  # made when the first batch shows the classes
        self.samples_seen = 0
        self._snapshot()

    def _use_robust_batch_norm(self, momentum: float) -> list[nn.Parameter]:
        self.model.requires_grad_(False)
        for name, module in list(self.model.named_modules()):
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                parent, _, child = name.rpartition(".")
                setattr(self.model.get_submodule(parent), child, RobustBatchNorm(module, momentum))
            elif isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
                module.requires_grad_(True)
        params = [p for m in self.model.modules() if isinstance(m, (RobustBatchNorm, nn.LayerNorm, nn.GroupNorm))
                  for p in m.parameters(recurse=False)]  # fmt: skip
        if not params:
            raise InputError("RoTTA adapts the affine parameters of normalization layers (BatchNorm1d/2d, LayerNorm, "
                             "GroupNorm), and the model has none")  # fmt: skip
        for p in params:
            p.requires_grad_(True)
        return params

    @property
    def predicting_model(self) -> nn.Module:
        return self.teacher

    @torch.no_grad()
    def predict_unadapted(self, x: Any) -> torch.Tensor:
        self.teacher.eval()  # in training mode its robust BatchNorm statistics would move
        return super().predict_unadapted(x)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "teacher": self.teacher.state_dict(), "memory": self.memory,
                "samples_seen": self.samples_seen}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.teacher.load_state_dict(state["teacher"])
        self.memory, self.samples_seen = copy.deepcopy(state["memory"]), int(state["samples_seen"])

    def adapt_and_predict(self, x: torch.Tensor) -> torch.Tensor:
        check_batch(self.augment, x)
        with torch.no_grad():
            self.model.eval(), self.teacher.eval()
            logits = self.teacher(x)
            probabilities = logits.softmax(dim=1)
            labels = probabilities.argmax(dim=1)
            uncertainty = (-probabilities * torch.log(probabilities + 1e-6)).sum(dim=1)
        if self.memory is None:
            self.memory = CategoryBalancedMemory(self.memory_size, logits.shape[1], self.lambda_t, self.lambda_u)
        for i, sample in enumerate(x):
            self.memory.add(sample, int(labels[i]), float(uncertainty[i]))
            self.samples_seen += 1
            if self.samples_seen % self.update_frequency == 0:
                self._learn_from_memory()
        return logits

    def _learn_from_memory(self) -> None:
        self.model.train(), self.teacher.train()
        data, ages = self.memory.samples()
        batch = torch.stack(data)
        strong = self.augment(batch) if self.augment is not None else batch
        teacher_logits = self.teacher(batch)
        student_logits = self.model(strong)
        age = torch.tensor(ages, dtype=torch.float32, device=batch.device)
        timeliness = torch.exp(-age) / (1 + torch.exp(-age))
        loss = (-(teacher_logits.softmax(1) * student_logits.log_softmax(1)).sum(1) * timeliness).mean()
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        with torch.no_grad():
            m = self.teacher_momentum
            for p_teacher, p_student in zip(self.teacher.parameters(), self.model.parameters()):
                p_teacher.data = m * p_teacher.data + (1 - m) * p_student.data
