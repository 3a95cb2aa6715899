"""CoTTA: continual test-time adaptation with a mean teacher and stochastic restore (Wang et al., CVPR 2022)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from ..models.batchnorm import batch_norm_layers
from .augment import InputScale, check_batch, resolve_augment
from .base import IMAGENET_SGD, TEST_TIME_METHODS, TestTimeAdapter, make_optimizer, use_batch_statistics


@TEST_TIME_METHODS.register("cotta")
class CoTTA(TestTimeAdapter):
    """A student trained on a mean teacher's soft labels, with a small share of its weights put back to the
    source's after every step.

    Wang, Fink, Van Gool & Dai, "Continual Test-Time Domain Adaptation", CVPR 2022. On each batch the
    teacher (an exponential moving average of the student, momentum ``teacher_momentum``) predicts; when
    the source model's mean confidence on the batch is below ``augment_threshold`` and ``augment`` is
    given, the teacher's prediction is the mean over ``augmentations`` augmented views. The student takes
    one Adam step on the cross-entropy to the teacher's softmax (``symmetric=True``: the symmetric form
    their ImageNet setting uses), the teacher follows, and each weight and bias entry of the student is
    reset to its source value with probability ``restore_probability`` (stochastic restore). Every weight
    and bias adapts (BatchNorm normalizing by each batch's statistics): any normalization, or none. The
    predictions are the teacher's, before its update.

    Follows the reference benchmark's transcription of the authors' code (mariodoebler/test-time-adaptation
    at 8b2ed63, ``classification/methods/cotta.py`` lines 16-138, built on qinenergy/cotta; ``conf.py``:
    restore 0.01, threshold 0.92, 32 views; ``cfgs/cifar10_c/cotta.yaml``: Adam, lr 1e-3, teacher momentum
    0.999), with their augmentation. It takes images in [0, 1] (or ``input_scale="imagenet"``); for other
    inputs pass ``augment=None`` (the teacher then predicts the batch itself) or a callable.

    Parameters
    ----------
    model : a trained classifier (deep-copied).
    teacher_momentum : the teacher's EMA momentum (0.999).
    restore_probability : the stochastic restore's probability per entry (0.01).
    augment_threshold : below this mean source confidence the teacher averages augmented views (0.92).
    augmentations : how many views (32).
    augment : ``"authors"`` (default), ``"none"``/None (no augmented views), or a callable on a batch.
    input_scale : what the model takes, for the authors' augmentation: ``"unit"`` or ``"imagenet"``.
    symmetric : the symmetric cross-entropy (their ImageNet loss) instead of the cross-entropy (their CIFAR one).
    lr, optimizer, momentum, nesterov : the step (:func:`adapt.testtime.base.make_optimizer`): Adam, lr 1e-3,
        betas (0.9, 0.999), their CIFAR setting; the ``"imagenet"`` preset is their ImageNet-C configuration.
    """

    name = "cotta"
    paper = "Wang et al., CVPR 2022"
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # the reference benchmark's cfgs/imagenet_c/cotta.yaml: SGD lr 0.01, RST 0.001, AP 0.1, the symmetric loss
        "imagenet": {"symmetric": True, **IMAGENET_SGD, "lr": 0.01, "restore_probability": 0.001,
                     "augment_threshold": 0.1},
    }  # fmt: skip

    def __init__(
        self,
        model: nn.Module,
        *,
        teacher_momentum: float = 0.999,
        restore_probability: float = 0.01,
        augment_threshold: float = 0.92,
        augmentations: int = 32,
        augment: str | Callable[[torch.Tensor], torch.Tensor] | None = "authors",
        input_scale: InputScale = "unit",
        symmetric: bool = False,
        lr: float = 1e-3,
        optimizer: str = "adam",
        momentum: float = 0.9,
        nesterov: bool = False,
    ) -> None:
        super().__init__(model)
        for name, value in (("teacher_momentum", teacher_momentum), ("restore_probability", restore_probability)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if isinstance(augmentations, bool) or int(augmentations) != augmentations or augmentations < 1:
            raise ValueError(f"augmentations must be a positive integer, got {augmentations!r}")
        self.model.eval().requires_grad_(True)
        use_batch_statistics(batch_norm_layers(self.model))
        self.adapted: dict[str, nn.Parameter] = {}  # every weight and bias, by name, in the authors' order
        for owner, module in self.model.named_modules():
            for name, p in module.named_parameters(recurse=False):
                if name in ("weight", "bias"):
                    self.adapted[f"{owner}.{name}" if owner else name] = p
        self.source = {name: p.detach().clone() for name, p in self.adapted.items()}
        self.teacher = copy.deepcopy(self.model).requires_grad_(False)
        self.anchor = copy.deepcopy(self.model).requires_grad_(False)
        self.teacher_momentum, self.restore_probability = teacher_momentum, restore_probability
        self.augment_threshold, self.augmentations = augment_threshold, int(augmentations)
        self.augment = resolve_augment(augment, input_scale)
        self.symmetric = symmetric
        self.optimizer = make_optimizer(list(self.adapted.values()), optimizer, lr, momentum, nesterov)
        self._snapshot()

    @property
    def predicting_model(self) -> nn.Module:
        return self.teacher

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "teacher": self.teacher.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.teacher.load_state_dict(state["teacher"])

    def adapt_and_predict(self, x: torch.Tensor) -> torch.Tensor:
        check_batch(self.augment, x)
        logits = self.model(x)
        teacher = self._teacher_logits(x)
        loss = -(teacher.softmax(1) * logits.log_softmax(1)).sum(1)
        if self.symmetric:  # softmax(), as theirs, not exp(log_softmax()): Adam magnifies rounding on tiny gradients
            loss = 0.5 * loss - 0.5 * (logits.softmax(1) * teacher.log_softmax(1)).sum(1)
        loss.mean().backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        with torch.no_grad():
            m = self.teacher_momentum
            for p_teacher, p_student in zip(self.teacher.parameters(), self.model.parameters()):
                p_teacher.data = m * p_teacher.data + (1 - m) * p_student.data
            if self.restore_probability > 0:
                for name, p in self.adapted.items():
                    mask = (torch.rand(p.shape) < self.restore_probability).float().to(p.device)
                    p.data = self.source[name] * mask + p * (1.0 - mask)
        return teacher.detach()

    @torch.no_grad()
    def _teacher_logits(self, x: torch.Tensor) -> torch.Tensor:
        confidence = self.anchor(x).softmax(1).max(1)[0]
        if self.augment is not None and confidence.mean(0) < self.augment_threshold:
            return torch.stack([self.teacher(self.augment(x)) for _ in range(self.augmentations)]).mean(0)
        return self.teacher(x)
