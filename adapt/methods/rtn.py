"""RTN: residual transfer networks (Long et al., NeurIPS 2016)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from ..batch import Batch
from ..losses import DAN_MULTIPLIERS, entropy, mmd, multilinear_map
from .base import Adapter, SearchSpace
from .registry import register_method


@register_method("rtn")
class RTN(Adapter):
    """A target classifier, a source classifier that differs from it by a residual block, and MMD on
    the fusion of features and predictions.

    Long et al., "Unsupervised Domain Adaptation with Residual Transfer Networks", NeurIPS 2016:

    * the source classifier is :math:`f_S(x) = f_T(x) + \\Delta f(f_T(x))`, with :math:`\\Delta f` two
      fully connected layers with a ReLU between them, and is the one trained on the source labels;
    * ``entropy_weight`` times the entropy of :math:`f_T` on the target;
    * ``trade_off`` times the multi-kernel MMD (:func:`adapt.losses.mmd`, DAN's kernel family) of the
      flattened outer product of features and softmax predictions (:func:`adapt.losses.multilinear_map`;
      the paper fuses its two last layers by tensor product).

    Predictions use the target classifier :math:`f_T` (``self.classifier``).

    Parameters
    ----------
    trade_off : weight of the MMD term.
    entropy_weight : weight of the target entropy term.
    multipliers : bandwidth multipliers of the Gaussian kernel family.
    """

    family = "discrepancy"
    paper = "Long et al., NeurIPS 2016"
    adaptation_term = "MMD of features x predictions, target entropy, residual source classifier"
    min_batch_size = 2
    search_space: ClassVar[SearchSpace] = {
        "trade_off": ("log_uniform", 0.1, 3.0),
        "entropy_weight": ("log_uniform", 0.03, 1.0),
    }

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        trade_off: float = 1.0,
        entropy_weight: float = 0.3,
        multipliers: Sequence[float] = DAN_MULTIPLIERS,
        **kwargs: Any,
    ) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        self.trade_off = trade_off
        self.entropy_weight = entropy_weight
        self.multipliers = tuple(multipliers)

    def build_modules(self, feature_dim: int) -> None:
        c = self.num_classes
        self.residual = nn.Sequential(nn.Linear(c, c), nn.ReLU(), nn.Linear(c, c))

    def source_logits(self, target_classifier_logits: torch.Tensor) -> torch.Tensor:
        """:math:`f_S = f_T + \\Delta f(f_T)`."""
        return target_classifier_logits + self.residual(target_classifier_logits)

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        out = self.forward_domains(batch)
        fused_source = multilinear_map(out.source_features, out.source_logits.float().softmax(dim=1))
        fused_target = multilinear_map(out.target_features, out.target_logits.float().softmax(dim=1))
        return {
            "classification": self.classification_loss(self.source_logits(out.source_logits), batch.source_y),
            "mmd": self.trade_off * mmd(fused_source, fused_target, multipliers=self.multipliers),
            "entropy": self.entropy_weight * entropy(out.target_logits),
        }
