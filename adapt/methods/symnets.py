"""SymNets: domain-symmetric networks (Zhang et al., CVPR 2019)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..batch import Batch
from ..losses.symmetric import symmetric_category_confusion, symmetric_domain_loss, symmetric_entropy
from ..train.engine import Stepper
from ..train.schedules import grl_coefficient
from .base import Adapter, SearchSpace
from .registry import register_method


@register_method("symnets")
class SymNets(Adapter):
    """A source classifier and a target classifier that must tell the domains apart, over features that
    must confuse them.

    Zhang et al., "Domain-Symmetric Networks for Adversarial Domain Adaptation", CVPR 2019.
    The joint softmax over both classifiers' logits (:mod:`adapt.losses.symmetric`) is trained in two
    optimizer stages per batch:

    1. the two classifiers only: cross-entropy of each on the source, plus the domain discrimination
       loss (source mass on the source half, target mass on the target half);
    2. the feature extractor only: the category-level confusion on the source plus
       :math:`\\lambda_p` times the domain-level confusion and the entropy on the target, with
       :math:`\\lambda_p = \\text{trade\\_off}\\,(2/(1+e^{-10p})-1)` as in the paper.

    ``self.classifier`` is :math:`C^s`; predictions come from the target classifier :math:`C^t`.
    SymNets does not take ``regularizers`` (its stages train different modules on different losses).

    Parameters
    ----------
    trade_off : the final value of :math:`\\lambda` (1 in the paper).
    """

    family = "adversarial"
    paper = "Zhang et al., CVPR 2019"
    adaptation_term = "domain-symmetric classifiers confused at category and domain level (2 stages)"
    accepts_regularizers = False
    search_space: ClassVar[SearchSpace] = {"trade_off": ("log_uniform", 0.1, 3.0)}

    def __init__(self, backbone: nn.Module, num_classes: int, *, trade_off: float = 1.0, **kwargs: Any) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        self.trade_off = trade_off

    def build_modules(self, feature_dim: int) -> None:
        self.target_classifier = nn.Linear(feature_dim, self.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.target_classifier(self.embed(x))

    def _both(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.classifier(features), self.target_classifier(features)

    def classifier_terms(self, source_features: torch.Tensor, target_features: torch.Tensor, labels: torch.Tensor):
        """Stage 1's terms (the classifiers' side)."""
        source, target = self._both(source_features), self._both(target_features)
        return {
            "classification": self.classification_loss(source[0], labels) + self.classification_loss(source[1], labels),
            "domain_discrimination": symmetric_domain_loss(*source, half=0) + symmetric_domain_loss(*target, half=1),
        }

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        """Stage 2's terms (the features' side), on one joint forward pass."""
        n = batch.source_x.shape[0]
        features = self.embed(torch.cat([batch.source_x, batch.target_x]))
        source, target = self._both(features[:n]), self._both(features[n:])
        weight = self.trade_off * grl_coefficient(progress)
        domain_confusion = 0.5 * (symmetric_domain_loss(*target, half=0) + symmetric_domain_loss(*target, half=1))
        return {
            "classification": symmetric_category_confusion(*source, batch.source_y),
            "domain_confusion": weight * domain_confusion,
            "entropy": weight * symmetric_entropy(*target),
        }

    def update(self, batch: Batch, progress: float, stepper: Stepper) -> dict[str, torch.Tensor]:
        n = batch.source_x.shape[0]
        with stepper.autocast():
            with torch.no_grad():
                features = self.embed(torch.cat([batch.source_x, batch.target_x]))
            classifier_terms = self.classifier_terms(features[:n], features[n:], batch.source_y)
            if batch.labeled_target_x is not None and batch.labeled_target_y is not None:
                # labeled target examples train both classifiers, as the source does
                with torch.no_grad():
                    labeled_features = self.embed(batch.labeled_target_x)
                labeled = [self.classification_loss(c, batch.labeled_target_y) for c in self._both(labeled_features)]
                classifier_terms["target_classification"] = batch.labeled_target_weight * sum(labeled)
        stepper.step(classifier_terms, only=[self.classifier, self.target_classifier])
        with stepper.autocast():
            terms = self.loss_terms(batch, progress)  # the features learn the labeled target examples here
        stepper.step(terms, only=[self.backbone, self.bottleneck])
        return {**terms, "domain_discrimination": classifier_terms["domain_discrimination"].detach()}
