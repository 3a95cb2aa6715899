"""AdaBN: adaptive batch normalization (Li et al., Pattern Recognition 2018)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..batch import Batch
from ..models.batchnorm import batch_norm_layers, frozen_running_statistics
from ..train.data import InputError
from .base import Adapter
from .registry import register_method


@register_method("adabn")
class AdaBN(Adapter):
    """Train on the source; normalize with the target's BatchNorm statistics at test time.

    Li et al., "Adaptive Batch Normalization for Practical Domain Adaptation", Pattern Recognition
    2018 (arXiv:1603.04779), Alg. 1: the weights are learned on the source alone, and every
    BatchNorm layer's mean and variance are replaced by those of the target. Here the source batch
    is normalized with its own statistics without touching the running estimates, and the target
    batch goes through the network without gradients to update them, so the running statistics the
    model predicts with are the target's (an exponential average over the last target batches).

    Needs BatchNorm layers, in the backbone or in a bottleneck (``bottleneck_dim``). LayerNorm and GroupNorm
    normalize each example by itself and keep no statistics to replace: on a ViT only a bottleneck's BatchNorm
    adapts (``bottleneck_dim``), and without one AdaBN refuses the network. It adds no loss term and sends
    the target through the network apart, so it takes no ``regularizers``.
    """

    family = "normalization"
    paper = "Li et al., Pattern Recognition 2018"
    adaptation_term = "target BatchNorm statistics (no loss term)"

    min_batch_size = 2  # the source batch goes through BatchNorm alone
    adapts_by_gradient = False
    #: the contract tests' backbone has no BatchNorm of its own
    contract_hparams: ClassVar[dict[str, Any]] = {"bottleneck_dim": 8}
    accepts_regularizers = False

    def __init__(self, backbone: nn.Module, num_classes: int, **kwargs: Any) -> None:
        super().__init__(backbone, num_classes, **kwargs)

    def build_modules(self, feature_dim: int) -> None:
        if not batch_norm_layers(self):
            raise InputError(
                "AdaBN adapts BatchNorm statistics, but this network has no BatchNorm layer: use a backbone "
                "with BatchNorm (ConvNet, DTN, ResNet) or pass bottleneck_dim to add one"
            )

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        with frozen_running_statistics(self):
            logits = self(batch.source_x)
        if self.training:
            with torch.no_grad():
                self.embed(batch.target_x)  # running statistics follow the target
        return {"classification": self.classification_loss(logits, batch.source_y)}
