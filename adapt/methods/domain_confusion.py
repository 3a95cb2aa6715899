"""Domain confusion (Tzeng et al., ICCV 2015)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from ..batch import Batch
from ..losses import domain_adversarial_loss
from ..losses.discrepancy import domain_confusion_loss
from ..models.heads import default_discriminator
from ..train.engine import Stepper
from .base import Adapter, SearchSpace
from .registry import register_method


@register_method("domain_confusion", "confusion")
class DomainConfusion(Adapter):
    """A domain classifier learns to tell the domains apart; the features make its output uniform.

    Tzeng et al., "Simultaneous Deep Transfer Across Domains and Tasks", ICCV 2015 (the
    unsupervised part; the soft-label transfer needs target labels). The two objectives alternate
    on each batch, instead of going through a gradient reversal layer:

    1. the domain classifier only minimizes its cross-entropy on the domain labels;
    2. the rest minimizes the source cross-entropy plus ``trade_off`` times the cross-entropy
       between the domain classifier's output and the uniform distribution
       (:func:`adapt.losses.discrepancy.domain_confusion_loss`).

    Parameters
    ----------
    trade_off : weight of the confusion term.
    discriminator_hidden : hidden widths of the domain classifier (None: as in DANN, two layers four
        times as wide as the features, between 64 and 1024).
    """

    family = "adversarial"
    paper = "Tzeng et al., ICCV 2015"
    adaptation_term = "domain classifier driven to uniform (alternating)"

    search_space: ClassVar[SearchSpace] = {"trade_off": ("log_uniform", 0.03, 3.0)}

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        trade_off: float = 1.0,
        discriminator_hidden: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        self.trade_off = trade_off
        self.discriminator_hidden = tuple(discriminator_hidden) if discriminator_hidden is not None else None

    def build_modules(self, feature_dim: int) -> None:
        self.discriminator = default_discriminator(feature_dim, feature_dim, self.discriminator_hidden)

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        """Step 2's objective (the features' side)."""
        out = self.forward_domains(batch)
        domain_logits = self.discriminator(torch.cat([out.source_features, out.target_features]))
        return {
            "classification": self.classification_loss(out.source_logits, batch.source_y),
            "confusion": self.trade_off * domain_confusion_loss(domain_logits),
        }

    def update(self, batch: Batch, progress: float, stepper: Stepper) -> dict[str, torch.Tensor]:
        n = batch.source_x.shape[0]
        with stepper.autocast():
            with torch.no_grad():
                features = self.embed(torch.cat([batch.source_x, batch.target_x]))
            domain_logits = self.discriminator(features)
            domain = domain_adversarial_loss(domain_logits[:n], domain_logits[n:])
        stepper.step(domain, only=[self.discriminator])  # 1
        with stepper.autocast():
            terms = self.loss_terms(batch, progress)
        stepper.step(terms, only=[m for name, m in self.named_children() if name != "discriminator"])  # 2
        return {**terms, "domain": domain.detach()}
