"""Source only (ERM): the no-adaptation baseline."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..batch import Batch
from .base import Adapter
from .registry import register_method


@register_method("source_only", "erm")
class SourceOnly(Adapter):
    """Cross-entropy on the labeled source batch; the target batch is ignored by design.

    The lower bound every adaptation method is compared with (called ERM in TLlib and DomainBed).
    Only the source batch goes through the network, so target data cannot leak in even through
    BatchNorm statistics.

    Examples
    --------
    >>> import torch
    >>> from adapt import SourceOnly
    >>> model = SourceOnly(torch.nn.Linear(2, 8), num_classes=2)
    """

    family = "baseline"
    paper = ""
    adaptation_term = "none (the baseline)"

    uses_target = False
    accepts_regularizers = False  # the regularizers alone are methods: create('bnm'), create('bsp'), ...

    def __init__(self, backbone: nn.Module, num_classes: int, **kwargs: Any) -> None:
        super().__init__(backbone, num_classes, **kwargs)

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        return {"classification": self.classification_loss(self(batch.source_x), batch.source_y)}
