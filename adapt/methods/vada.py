"""VADA: virtual adversarial domain adaptation (Shu et al., ICLR 2018)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..batch import Batch
from ..losses import entropy
from ..losses.vat import virtual_adversarial_loss
from ..models.batchnorm import dropout_disabled, frozen_running_statistics
from .adversarial import AdversarialAdapter
from .base import SearchSpace
from .registry import register_method


@register_method("vada")
class VADA(AdversarialAdapter):
    """Domain-adversarial training plus the cluster assumption: confident, locally smooth predictions.

    Shu et al., "A DIRT-T Approach to Unsupervised Domain Adaptation", ICLR 2018, the VADA objective:

    .. math:: L_y + \\lambda_d L_d + \\lambda_s L_v(x^s) + \\lambda_t \\big(L_c(x^t) + L_v(x^t)\\big)

    with :math:`L_d` the domain loss (here through this library's gradient reversal, see
    :class:`~adapt.methods.adversarial.AdversarialAdapter`), :math:`L_c` the conditional entropy
    (:func:`adapt.losses.entropy`) and :math:`L_v` the virtual adversarial loss
    (:func:`adapt.losses.vat.virtual_adversarial_loss`, on each domain's batch alone, BatchNorm
    running statistics frozen and dropout off during it).

    Parameters
    ----------
    trade_off : :math:`\\lambda_d`.
    source_vat : :math:`\\lambda_s`.
    target_weight : :math:`\\lambda_t`, on the target entropy and the target VAT term. The defaults,
        0.01, 1 and 0.01, are the paper's most common setting.
    vat_epsilon : L2 norm of the adversarial perturbation per example, in input units: scale it with
        the norm of your inputs.
    """

    family = "adversarial"
    min_batch_size = 2  # each domain's batch goes through BatchNorm alone in the VAT passes
    paper = "Shu et al., ICLR 2018"
    adaptation_term = "domain loss + target entropy + virtual adversarial smoothness on both domains"
    search_space: ClassVar[SearchSpace] = {
        "trade_off": ("log_uniform", 0.003, 0.3),
        "target_weight": ("log_uniform", 0.003, 0.3),
    }

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        trade_off: float = 0.01,
        source_vat: float = 1.0,
        target_weight: float = 0.01,
        vat_epsilon: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(backbone, num_classes, trade_off=trade_off, **kwargs)
        self.source_vat = source_vat
        self.target_weight = target_weight
        self.vat_epsilon = vat_epsilon

    def build_modules(self, feature_dim: int) -> None:
        self.discriminator = self.make_discriminator(feature_dim, feature_dim)

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        out = self.forward_domains(batch)
        source_domain, target_domain = self.domain_logits(
            out.source_features, out.target_features, progress, batch.step
        )
        # each domain's clean and perturbed predictions from batches of that domain alone (see the VAT docs)
        with frozen_running_statistics(self), dropout_disabled(self):
            source_vat = virtual_adversarial_loss(self, batch.source_x, epsilon=self.vat_epsilon)
            target_vat = virtual_adversarial_loss(self, batch.target_x, epsilon=self.vat_epsilon)
        return {
            "classification": self.classification_loss(out.source_logits, batch.source_y),
            "domain": self.discriminator_loss(source_domain, target_domain),
            "source_vat": self.source_vat * source_vat,
            "target_entropy": self.target_weight * entropy(out.target_logits),
            "target_vat": self.target_weight * target_vat,
        }
