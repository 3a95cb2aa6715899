"""MCC: minimum class confusion (Jin et al., ECCV 2020)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..batch import Batch
from ..losses import mcc_loss
from .base import Adapter, SearchSpace
from .registry import register_method


@register_method("mcc")
class MCC(Adapter):
    """Reduce the confusion between classes in the target predictions.

    Jin et al., "Minimum Class Confusion for Versatile Domain Adaptation", ECCV 2020, Eq. 7:
    :math:`L_y + \\text{trade\\_off}\\cdot L_{MCC}(\\hat Y_t)` (see :func:`adapt.losses.mcc_loss`).

    Parameters
    ----------
    trade_off : weight of the MCC term (1 in the paper).
    temperature : softmax temperature T (2.5 in the paper).
    """

    family = "regularizer"
    paper = "Jin et al., ECCV 2020"
    adaptation_term = "class confusion of the target predictions"

    search_space: ClassVar[SearchSpace] = {
        "trade_off": ("log_uniform", 0.1, 10.0),
        "temperature": ("uniform", 1.0, 5.0),
    }

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        trade_off: float = 1.0,
        temperature: float = 2.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        self.trade_off = trade_off
        self.temperature = temperature

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        out = self.forward_domains(batch)
        return {
            "classification": self.classification_loss(out.source_logits, batch.source_y),
            "mcc": self.trade_off * mcc_loss(out.target_logits, self.temperature),
        }
