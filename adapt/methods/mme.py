"""MME: minimax entropy (Saito et al., ICCV 2019), the standard semi-supervised DA method."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..batch import Batch
from ..losses import gradient_reversal, minimax_entropy_loss
from ..models.heads import CosineClassifier
from ..train.engine import Stepper
from .base import Adapter, SearchSpace
from .registry import register_method


@register_method("mme")
class MME(Adapter):
    """Minimax entropy between a cosine classifier and the features, on the unlabeled target.

    Saito, Kim, Sclaroff, Darrell, Saenko, "Semi-supervised Domain Adaptation via Minimax Entropy",
    ICCV 2019. The classifier is a set of class prototypes compared by cosine similarity at a
    ``temperature`` (:class:`~adapt.models.heads.CosineClassifier`). Each update takes two optimizer
    steps, as the authors' ``main.py`` does: the cross-entropy of the labeled source and of the
    labeled target examples (``fit(target_labeled=...)``), then ``trade_off`` times the target's
    :func:`~adapt.losses.minimax_entropy_loss` through a gradient reversal before the classifier,
    so that the prototypes maximize the target entropy and the features minimize it. Without labeled
    target examples it is an unsupervised method like the others. One difference from the authors'
    code: their first step takes one cross-entropy over the source and labeled target batches
    concatenated; here the two means are summed (the ``target_classification`` term all methods share).

    Parameters
    ----------
    trade_off : weight of the entropy term (the authors' ``lamda``, 0.1).
    temperature : the cosine classifier's temperature (the authors' ``T``, 0.05).
    """

    family = "adversarial"
    paper = "Saito et al., ICCV 2019"
    adaptation_term = "minimax entropy of a cosine classifier on the target"
    accepts_regularizers = False  # two optimizer steps per batch, no joint pass to add them to

    search_space: ClassVar[SearchSpace] = {
        "trade_off": ("log_uniform", 0.01, 1.0),
        "temperature": ("choice", [0.05, 0.1]),
    }

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        trade_off: float = 0.1,
        temperature: float = 0.05,
        **kwargs: Any,
    ) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        self.trade_off = trade_off
        self.temperature = temperature

    def build_modules(self, feature_dim: int) -> None:
        self.classifier = CosineClassifier(feature_dim, self.num_classes, self.temperature)

    def _entropy_term(self, target_features: torch.Tensor) -> torch.Tensor:
        return self.trade_off * minimax_entropy_loss(self.classifier(gradient_reversal(target_features)))

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        """Both steps' terms on one joint forward pass (what the contract checks look at)."""
        out = self.forward_domains(batch)
        return {
            "classification": self.classification_loss(out.source_logits, batch.source_y),
            "minimax_entropy": self._entropy_term(out.target_features),
        }

    def update(self, batch: Batch, progress: float, stepper: Stepper) -> dict[str, torch.Tensor]:
        with stepper.autocast():
            supervised = {"classification": self.classification_loss(self(batch.source_x), batch.source_y),
                          **self.labeled_target_terms(batch)}  # fmt: skip
        stepper.step(supervised)
        with stepper.autocast():
            entropy_term = self._entropy_term(self.embed(batch.target_x))
        stepper.step(entropy_term)
        return {**{k: v.detach() for k, v in supervised.items()}, "minimax_entropy": entropy_term.detach()}
