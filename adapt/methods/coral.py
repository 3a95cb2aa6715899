"""Deep CORAL: correlation alignment (Sun & Saenko, ECCV Workshops 2016)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import nn

from ..batch import Batch
from ..losses import coral_loss, scale_free_coral_loss
from .base import Adapter, SearchSpace
from .registry import register_method


@register_method("coral", "deep_coral")
class DeepCORAL(Adapter):
    """Align second-order statistics of source and target features.

    Sun & Saenko, "Deep CORAL: Correlation Alignment for Deep Domain Adaptation", 2016, Eq. 5:
    :math:`L_y + \\text{trade\\_off}\\cdot \\frac{1}{4d^2}\\lVert C_S - C_T\\rVert_F^2`.

    Parameters
    ----------
    trade_off : weight of the CORAL term (the paper picks it so both terms end up comparable).
    normalization : ``"paper"``: Eq. 1 as written, :math:`\\frac{1}{4d^2}`; ``"scale_free"``: the same
        difference of covariances divided by the features' pooled mean variance squared and by
        :math:`\\sqrt d` more (:func:`adapt.losses.scale_free_coral_loss`), so that one ``trade_off``
        pulls as hard at any feature width and scale.
    """

    family = "discrepancy"
    paper = "Sun & Saenko, ECCV-W 2016"
    adaptation_term = "difference of feature covariances"

    min_batch_size = 2
    search_space: ClassVar[SearchSpace] = {"trade_off": ("log_uniform", 0.1, 100.0)}

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        trade_off: float = 1.0,
        normalization: Literal["paper", "scale_free"] = "paper",
        **kwargs: Any,
    ) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        if normalization not in ("paper", "scale_free"):
            raise ValueError(f"normalization must be 'paper' or 'scale_free', got {normalization!r}")
        self.trade_off = trade_off
        self.normalization = normalization

    @property
    def _coral(self):
        return coral_loss if self.normalization == "paper" else scale_free_coral_loss

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        out = self.forward_domains(batch)
        return {
            "classification": self.classification_loss(out.source_logits, batch.source_y),
            "coral": self.trade_off * self._coral(out.source_features, out.target_features),
        }
