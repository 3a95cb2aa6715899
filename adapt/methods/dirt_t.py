"""DIRT-T: decision-boundary iterative refinement on the target, VADA's second stage (Shu et al., ICLR 2018)."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch
from torch import nn

from ..batch import Batch
from ..losses import entropy, prediction_kl
from ..losses.vat import virtual_adversarial_loss
from ..models.batchnorm import dropout_disabled, frozen_running_statistics
from .base import SearchSpace
from .registry import register_method
from .vada import VADA


@register_method("dirt_t", "dirtt")
class DIRTT(VADA):
    """VADA, then refinement on the target alone inside a trust region around a periodically renewed teacher.

    Shu et al., "A DIRT-T Approach to Unsupervised Domain Adaptation", ICLR 2018. One run does both
    stages: the first ``vada_fraction`` of the steps trains :class:`~adapt.methods.vada.VADA`; then the
    source and the discriminator are dropped and the model minimizes, on target batches only,

    .. math:: \\lambda_t \\big(L_c(x^t) + L_v(x^t)\\big)
              + \\beta\\, \\mathbb E_{x^t}\\big[\\mathrm{KL}(h_{\\theta_{n-1}}(x^t) \\,\\|\\, h_\\theta(x^t))\\big],

    the conditional entropy and the virtual adversarial loss pushing the decision boundary away from
    target clusters, and the KL term (:func:`adapt.losses.prediction_kl`) keeping it near the teacher
    :math:`h_{\\theta_{n-1}}`, a frozen copy of the model taken when refinement starts and renewed every
    ``teacher_every`` steps. The teacher predicts in eval mode (its BatchNorm running statistics).

    The refinement terms are logged as one term, ``dirt_t`` (the KL part is zero, with zero gradient, right
    after each renewal). ``classification``, the source loss, is still logged during refinement for
    monitoring but is not optimized (computed without gradient, BatchNorm statistics untouched).

    Parameters
    ----------
    vada_fraction : share of the run spent on VADA, in (0, 1).
    beta : :math:`\\beta`, the trust region's weight.
    teacher_every : steps between renewals of the teacher.
    target_weight : :math:`\\lambda_t` for both stages (see :class:`~adapt.methods.vada.VADA` for the others).
    """

    family = "adversarial"
    paper = "Shu et al., ICLR 2018"
    adaptation_term = "VADA, then target entropy + VAT inside a KL trust region around a renewed teacher"
    accepts_regularizers = False
    fixed_modules: ClassVar[tuple[str, ...]] = ("teacher",)
    search_space: ClassVar[SearchSpace] = {
        "beta": ("log_uniform", 0.003, 0.3),
        "vada_fraction": ("uniform", 0.3, 0.8),
    }

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        vada_fraction: float = 0.5,
        beta: float = 0.01,
        teacher_every: int = 500,
        **kwargs: Any,
    ) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        if not 0 < vada_fraction < 1:
            raise ValueError(f"vada_fraction must be in (0, 1), got {vada_fraction!r}")
        if int(teacher_every) != teacher_every or teacher_every < 1:
            raise ValueError(f"teacher_every must be a positive integer, got {teacher_every!r}")
        self.vada_fraction = vada_fraction
        self.beta = beta
        self.teacher_every = int(teacher_every)

    def build_modules(self, feature_dim: int) -> None:
        super().build_modules(feature_dim)
        self.teacher = nn.Sequential(
            copy.deepcopy(self.backbone), copy.deepcopy(self.bottleneck), copy.deepcopy(self.classifier)
        ).requires_grad_(False)
        # the step refinement started at (-1: not yet), a buffer so that a resumed run renews on schedule
        self.register_buffer("refinement_start", torch.tensor(-1))
        self._refinement_start = -1  # its value on the host: no device sync per step

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self._refinement_start = int(self.refinement_start)
        if self._refinement_start >= 0:
            self.discriminator.requires_grad_(False)
        return result

    def _renew_teacher(self, step: int) -> None:
        if self._refinement_start < 0:
            self._refinement_start = step
            self.refinement_start.fill_(step)
            self.discriminator.requires_grad_(False)  # VADA's discriminator has no part in refinement
        if (step - self._refinement_start) % self.teacher_every == 0:
            student = nn.Sequential(self.backbone, self.bottleneck, self.classifier)
            self.teacher.load_state_dict(student.state_dict())

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        if progress < self.vada_fraction:
            return super().loss(batch, progress)
        self._renew_teacher(batch.step)
        logits = self(batch.target_x)
        with torch.no_grad():
            self.teacher.eval()
            teacher_logits = self.teacher(batch.target_x)
            with frozen_running_statistics(self):
                source_loss = self.classification_loss(self(batch.source_x), batch.source_y)
        with frozen_running_statistics(self), dropout_disabled(self):
            target_vat = virtual_adversarial_loss(self, batch.target_x, epsilon=self.vat_epsilon)
        cluster = self.target_weight * (entropy(logits) + target_vat)
        return {"classification": source_loss, "dirt_t": cluster + self.beta * prediction_kl(teacher_logits, logits)}
