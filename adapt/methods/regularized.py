"""What BNM, MinEnt, IM, BSP and AFN share: the source loss plus one named regularizer."""

from __future__ import annotations

from typing import ClassVar

import torch

from ..batch import Batch
from .base import Adapter
from .regularizers import regularizer_value


class RegularizedSourceOnly(Adapter):
    """Cross-entropy on the source plus ``trade_off`` times one regularizer of :mod:`.regularizers`.

    Not registered itself. A subclass names its ``regularizer`` and declares ``trade_off`` with its
    paper's default in its own ``__init__``.
    """

    regularizer: ClassVar[str] = ""
    trade_off: float

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        out = self.forward_domains(batch)
        return {
            "classification": self.classification_loss(out.source_logits, batch.source_y),
            self.regularizer: self.trade_off * regularizer_value(self.regularizer, out, self, batch),
        }
