"""MME: minimax entropy (Saito et al., ICCV 2019), the standard semi-supervised DA method."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..batch import Batch
from ..losses import minimax_entropy_loss
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
    target examples it is an unsupervised method like the others.

    The ``"official"`` preset is the authors' ``main.py`` for ResNets (VisionLearningGroup/SSDA_MME at
    commit ee04ddd, lines 75-206; ``model/basenet.py``'s ``Predictor_deep``; ``utils/lr_schedule.py``):
    a 512-unit linear layer before the cosine classifier with the gradient reversed after it, one
    cross-entropy over the source and labeled target batches concatenated, and their optimizer as
    training options: SGD with Nesterov momentum 0.9, weight decay 5e-4, lr 0.01 with the backbone at
    0.1x, the schedule :math:`(1 + 10^{-4} t)^{-0.75}` (``lr_schedule="mme"``) and an unlabeled target
    batch twice the labeled ones (``target_batch_mult=2``; their batch is 32 on ResNets). The library
    default differs: the cosine classifier directly on the features (their ``Predictor``, for AlexNet and
    VGG), the two cross-entropy means summed (the ``target_classification`` term every method shares,
    weighted by ``labeled_target_weight``), and ``fit``'s own optimizer. Not reproduced: their early
    stopping, which selects on a labeled target validation split.

    Parameters
    ----------
    trade_off : weight of the entropy term (the authors' ``lamda``, 0.1).
    temperature : the cosine classifier's temperature (the authors' ``T``, 0.05).
    predictor_hidden : width of the linear layer before the cosine classifier (None: none; 512 in their
        ``Predictor_deep``).
    joint_supervised_batch : one cross-entropy over the source and labeled target examples together,
        as the authors' first step (False: the mean of each, summed).
    """

    family = "adversarial"
    paper = "Saito et al., ICCV 2019"
    adaptation_term = "minimax entropy of a cosine classifier on the target"
    accepts_regularizers = False  # two optimizer steps per batch, no joint pass to add them to

    search_space: ClassVar[SearchSpace] = {
        "trade_off": ("log_uniform", 0.01, 1.0),
        "temperature": ("choice", [0.05, 0.1]),
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "official": {
            "trade_off": 0.1,
            "temperature": 0.05,
            "predictor_hidden": 512,
            "joint_supervised_batch": True,
            "fit": {"lr": 0.01, "optimizer": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
                    "backbone_lr_mult": 0.1, "lr_schedule": "mme", "target_batch_mult": 2},
        },
    }  # fmt: skip

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        trade_off: float = 0.1,
        temperature: float = 0.05,
        predictor_hidden: int | None = None,
        joint_supervised_batch: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        if predictor_hidden is not None and (int(predictor_hidden) != predictor_hidden or predictor_hidden < 1):
            raise ValueError(f"predictor_hidden must be a positive integer or None, got {predictor_hidden!r}")
        self.trade_off = trade_off
        self.temperature = temperature
        self.predictor_hidden = None if predictor_hidden is None else int(predictor_hidden)
        self.joint_supervised_batch = bool(joint_supervised_batch)

    def build_modules(self, feature_dim: int) -> None:
        self.classifier = CosineClassifier(feature_dim, self.num_classes, self.temperature, self.predictor_hidden)

    def _entropy_term(self, target_features: torch.Tensor) -> torch.Tensor:
        return self.trade_off * minimax_entropy_loss(self.classifier(target_features, reverse=True))

    def _supervised_terms(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The first step's cross-entropy: of the source, and of the labeled target examples if any."""
        if self.joint_supervised_batch and batch.labeled_target_x is not None:
            x = torch.cat([batch.source_x, batch.labeled_target_x])
            y = torch.cat([batch.source_y, batch.labeled_target_y])
            return {"classification": self.classification_loss(self(x), y)}
        return {"classification": self.classification_loss(self(batch.source_x), batch.source_y),
                **self.labeled_target_terms(batch)}  # fmt: skip

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        """Both steps' terms on one joint forward pass (what the contract checks look at)."""
        out = self.forward_domains(batch)
        return {
            "classification": self.classification_loss(out.source_logits, batch.source_y),
            "minimax_entropy": self._entropy_term(out.target_features),
        }

    def update(self, batch: Batch, progress: float, stepper: Stepper) -> dict[str, torch.Tensor]:
        with stepper.autocast():
            supervised = self._supervised_terms(batch)
        stepper.step(supervised)
        with stepper.autocast():
            entropy_term = self._entropy_term(self.embed(batch.target_x))
        stepper.step(entropy_term)
        return {**{k: v.detach() for k, v in supervised.items()}, "minimax_entropy": entropy_term.detach()}
