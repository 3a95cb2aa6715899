"""DANN: domain-adversarial neural network (Ganin et al., JMLR 2016)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from ..losses import domain_adversarial_loss, gradient_reversal
from ..models.heads import DomainDiscriminator
from ..train.engine import Batch
from ..train.schedules import grl_coefficient
from .base import Adapter, SearchSpace
from .registry import register_method


@register_method("dann")
class DANN(Adapter):
    """Domain-adversarial training through a gradient reversal layer.

    Ganin et al., "Domain-Adversarial Training of Neural Networks", JMLR 2016, Eq. 18:

    .. math:: \\min_{f,g}\\max_{d}\\; L_y(g(f(x^s)), y^s) - \\lambda\\, L_d(d(f(x^s)), d(f(x^t)))

    implemented as one minimization with :math:`L_y + \\text{trade\\_off}\\cdot L_d(d(R_\\lambda(f)))`
    where :math:`R_\\lambda` reverses gradients with :math:`\\lambda_p = 2/(1+e^{-10p})-1`.

    Parameters
    ----------
    trade_off : weight of the domain loss (1 in the paper; the schedule does the ramp-up).
    discriminator_hidden : hidden widths of the discriminator (paper: 1024-1024; 100 for MNIST).
    discriminator_batch_norm : BatchNorm in the discriminator (TLlib's choice).
    grl_max : final gradient-reversal coefficient.
    schedule_grl : ramp the coefficient up with training progress (paper); if False, constant.
    """

    search_space: ClassVar[SearchSpace] = {"trade_off": ("log_uniform", 0.1, 3.0)}

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        trade_off: float = 1.0,
        discriminator_hidden: Sequence[int] = (1024, 1024),
        discriminator_batch_norm: bool = True,
        grl_max: float = 1.0,
        schedule_grl: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        self.trade_off = trade_off
        self.discriminator_hidden = tuple(discriminator_hidden)
        self.discriminator_batch_norm = discriminator_batch_norm
        self.grl_max = grl_max
        self.schedule_grl = schedule_grl

    def build_modules(self, feature_dim: int) -> None:
        self.discriminator = DomainDiscriminator(feature_dim, self.discriminator_hidden, self.discriminator_batch_norm)

    def grl_coefficient(self, progress: float) -> float:
        return grl_coefficient(progress, self.grl_max) if self.schedule_grl else self.grl_max

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        out = self.forward_domains(batch)
        n = out.source_features.shape[0]
        features = torch.cat([out.source_features, out.target_features])
        domain_logits = self.discriminator(gradient_reversal(features, self.grl_coefficient(progress)))
        return {
            "classification": self.classification_loss(out.source_logits, batch.source_y),
            "domain": self.trade_off * domain_adversarial_loss(domain_logits[:n], domain_logits[n:]),
        }
