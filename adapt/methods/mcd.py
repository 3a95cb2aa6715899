"""MCD: maximum classifier discrepancy (Saito et al., CVPR 2018)."""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

import torch
from torch import nn

from ..batch import Batch
from ..losses.discrepancy import classifier_discrepancy
from ..train.engine import Stepper
from .base import Adapter, SearchSpace
from .registry import register_method


@register_method("mcd")
class MCD(Adapter):
    """Two classifiers disagree as much as they can on the target; the features make them agree.

    Saito et al., "Maximum Classifier Discrepancy for Unsupervised Domain Adaptation", CVPR 2018,
    the training procedure. Each batch takes three optimizer stages:

    A. everything minimizes the source cross-entropy of both classifiers;
    B. the classifiers only minimize it minus ``trade_off`` times their discrepancy on the target
       (:func:`adapt.losses.discrepancy.classifier_discrepancy`);
    C. the feature extractor (backbone and bottleneck) only minimizes ``trade_off`` times the
       discrepancy, ``generator_steps`` times (n = 4 in the paper's digit experiments).

    Predictions average the two classifiers' logits. MCD does not take ``regularizers``: its
    stages train different modules on different losses.

    Parameters
    ----------
    trade_off : weight of the discrepancy in stages B and C (1 in the paper).
    generator_steps : updates of the feature extractor per batch (stage C).
    """

    family = "classifier disagreement"
    paper = "Saito et al., CVPR 2018"
    adaptation_term = "two classifiers' disagreement (3 stages)"

    accepts_regularizers = False
    min_batch_size = 2  # stages A and C send one domain alone through BatchNorm
    search_space: ClassVar[SearchSpace] = {
        "trade_off": ("log_uniform", 0.1, 10.0),
        "generator_steps": ("choice", [1, 2, 4]),
    }

    def __init__(
        self, backbone: nn.Module, num_classes: int, *, trade_off: float = 1.0, generator_steps: int = 4, **kwargs: Any
    ) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        if (
            isinstance(generator_steps, bool)
            or not isinstance(generator_steps, numbers.Integral)
            or generator_steps < 1
        ):
            raise ValueError(f"generator_steps must be an integer >= 1, got {generator_steps!r}")
        self.trade_off = trade_off
        self.generator_steps = int(generator_steps)

    def build_modules(self, feature_dim: int) -> None:
        self.second_classifier = nn.Linear(feature_dim, self.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.embed(x)
        return (self.classifier(features) + self.second_classifier(features)) / 2

    def _source_loss(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.classification_loss(self.classifier(features), labels) + self.classification_loss(
            self.second_classifier(features), labels
        )

    def _discrepancy(self, target_features: torch.Tensor) -> torch.Tensor:
        return classifier_discrepancy(self.classifier(target_features), self.second_classifier(target_features))

    def _classifier_terms(self, features: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        n = batch.source_x.shape[0]
        return {
            "classification": self._source_loss(features[:n], batch.source_y),
            "discrepancy": -self.trade_off * self._discrepancy(features[n:]),
        }

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        """Stage B's objective on one joint forward pass (what the contract checks look at)."""
        return self._classifier_terms(self.embed(torch.cat([batch.source_x, batch.target_x])), batch)

    def labeled_target_terms(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Labeled target examples train both classifiers, like the source (in step A)."""
        if batch.labeled_target_x is None or batch.labeled_target_y is None:
            return {}
        loss = self._source_loss(self.embed(batch.labeled_target_x), batch.labeled_target_y)
        return {"target_classification": batch.labeled_target_weight * loss}

    def update(self, batch: Batch, progress: float, stepper: Stepper) -> dict[str, torch.Tensor]:
        classifiers = [self.classifier, self.second_classifier]
        with stepper.autocast():
            source_loss = self._source_loss(self.embed(batch.source_x), batch.source_y)
            labeled = self.labeled_target_terms(batch)
        stepper.step({"classification": source_loss, **labeled})  # A
        with stepper.autocast():
            with torch.no_grad():  # stage B trains the classifiers only: no backward through the features
                features = self.embed(torch.cat([batch.source_x, batch.target_x]))
            terms = self._classifier_terms(features, batch)
        stepper.step(terms, only=classifiers)  # B
        for _ in range(self.generator_steps):  # C
            with stepper.autocast():
                generator_loss = self.trade_off * self._discrepancy(self.embed(batch.target_x))
            stepper.step(generator_loss, only=[self.backbone, self.bottleneck])
        labeled = {k: v.detach() for k, v in labeled.items()}
        return {**terms, **labeled, "generator_discrepancy": generator_loss.detach()}
