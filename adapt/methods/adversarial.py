"""What DANN and CDAN share: a domain discriminator behind a gradient-reversal layer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..batch import Batch
from ..losses import domain_adversarial_loss, gradient_reversal
from ..losses.adversarial import DomainReduction
from ..models.heads import DomainDiscriminator, default_discriminator
from ..train.schedules import GRLSchedule, grl_coefficient, warm_start_grl_coefficient
from .base import Adapter

GRL_SCHEDULES = ("dann", "warm_start", "constant")


class AdversarialAdapter(Adapter):
    """Base class of the domain-adversarial methods (not registered itself).

    Parameters
    ----------
    trade_off : weight of the domain loss.
    discriminator_hidden : hidden widths of the domain discriminator; None: two layers as wide as
        four times the feature width D (the classifier's input), between 64 and 1024 -- 1024-1024 as
        in the papers for D >= 256, narrower (and cheaper) for small networks.
    discriminator_batch_norm : BatchNorm after every hidden layer of the discriminator.
    discriminator_dropout : dropout after every hidden layer of the discriminator.
    grl_schedule : how the gradient-reversal coefficient grows to ``grl_max`` (default 'warm_start':
        on the tuning half of the shift zoo it halved DANN's negative transfer at 3000 steps and kept
        short runs close to SourceOnly; see ``docs/decisions.md``):
        'dann' -- with the fraction p of training done, :math:`2/(1+e^{-10p})-1` (Ganin et al.);
        'warm_start' -- with the step i, :math:`2/(1+e^{-\\alpha i/N})-1` (TLlib; the CDAN code),
        ``alpha = grl_warm_start_alpha``, ``N = grl_warm_start_steps``; 'constant' -- ``grl_max``.
    grl_max : the final gradient-reversal coefficient.
    grl_warm_start_steps, grl_warm_start_alpha : N and alpha of the 'warm_start' schedule.
    domain_loss : 'mean' -- the average of the source and target discriminator losses (TLlib);
        'sum' -- their sum (Ganin et al., Eq. 18; pytorch-adapt), twice as strong at the same
        ``trade_off``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        trade_off: float = 1.0,
        discriminator_hidden: Sequence[int] | None = None,
        discriminator_batch_norm: bool = True,
        discriminator_dropout: float = 0.0,
        grl_schedule: GRLSchedule = "warm_start",
        grl_max: float = 1.0,
        grl_warm_start_steps: int = 1000,
        grl_warm_start_alpha: float = 1.0,
        domain_loss: DomainReduction = "mean",
        **kwargs: Any,
    ) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        if grl_schedule not in GRL_SCHEDULES:
            raise ValueError(f"grl_schedule must be one of {', '.join(GRL_SCHEDULES)}, got {grl_schedule!r}")
        if domain_loss not in ("mean", "sum"):
            raise ValueError(f"domain_loss must be 'mean' or 'sum', got {domain_loss!r}")
        self.trade_off = trade_off
        self.discriminator_hidden = tuple(discriminator_hidden) if discriminator_hidden is not None else None
        self.discriminator_batch_norm = discriminator_batch_norm
        self.discriminator_dropout = discriminator_dropout
        self.grl_schedule = grl_schedule
        self.grl_max = grl_max
        self.grl_warm_start_steps = grl_warm_start_steps
        self.grl_warm_start_alpha = grl_warm_start_alpha
        self.domain_loss = domain_loss

    def make_discriminator(self, in_features: int, feature_dim: int) -> DomainDiscriminator:
        """The discriminator for inputs of width ``in_features`` (features of width ``feature_dim``)."""
        return default_discriminator(
            in_features,
            feature_dim,
            self.discriminator_hidden,
            self.discriminator_batch_norm,
            self.discriminator_dropout,
        )

    def grl_coefficient(self, progress: float, step: int) -> float:
        """The gradient-reversal coefficient at this point of training (see ``grl_schedule``)."""
        if self.grl_schedule == "dann":
            return grl_coefficient(progress, self.grl_max)
        if self.grl_schedule == "warm_start":
            return warm_start_grl_coefficient(
                step, self.grl_max, alpha=self.grl_warm_start_alpha, max_steps=self.grl_warm_start_steps
            )
        return self.grl_max

    def domain_logits(
        self, source_inputs: torch.Tensor, target_inputs: torch.Tensor, progress: float, step: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The discriminator's logits for both domains, seen through the gradient reversal layer.

        Source and target go through the discriminator as one batch (shared BatchNorm statistics),
        so the backbone receives the reversed, scaled gradient of the domain loss.
        """
        joint = torch.cat([source_inputs, target_inputs])
        logits = self.discriminator(gradient_reversal(joint, self.grl_coefficient(progress, step)))
        return logits[: source_inputs.shape[0]], logits[source_inputs.shape[0] :]

    def discriminator_loss(
        self,
        source_logits: torch.Tensor,
        target_logits: torch.Tensor,
        source_weights: torch.Tensor | None = None,
        target_weights: torch.Tensor | None = None,
        weight_normalization: str = "per_domain",
    ) -> torch.Tensor:
        """The weighted domain term, ``trade_off * domain_adversarial_loss(...)``."""
        return self.trade_off * domain_adversarial_loss(
            source_logits,
            target_logits,
            source_weights,
            target_weights,
            reduction=self.domain_loss,
            weight_normalization=weight_normalization,
        )

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        raise NotImplementedError
