"""DAN: deep adaptation network with multi-kernel MMD (Long et al., ICML 2015)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from ..losses import DAN_MULTIPLIERS, mmd
from ..losses.mmd import Bandwidth, Estimator
from ..train.engine import Batch
from .base import Adapter, SearchSpace
from .registry import register_method


@register_method("dan", "mmd")
class DAN(Adapter):
    """Minimize the multi-kernel MMD between source and target features.

    Long et al., "Learning Transferable Features with Deep Adaptation Networks", ICML 2015, Eq. 4:
    :math:`L_y + \\text{trade\\_off}\\cdot \\mathrm{MK\\text{-}MMD}^2(f(x^s), f(x^t))`, with the
    Gaussian family :math:`\\gamma = 2^k \\bar d^2, k=-3..1` (TLlib's reproduction).

    Parameters
    ----------
    trade_off : weight of the MMD term (1 in TLlib).
    multipliers : bandwidth multipliers of the Gaussian family.
    bandwidth : base bandwidth: 'mean' or 'median' pairwise squared distance, or a number.
    estimator : 'unbiased' (default, as TLlib's reproduction), 'biased', or 'linear' (the paper's
        O(n) estimator, noisier at small batches).
    adapt_logits : also align the classifier logits (DAN adapts all task-specific layers).
    """

    min_batch_size = 2
    search_space: ClassVar[SearchSpace] = {"trade_off": ("log_uniform", 0.1, 10.0)}

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        trade_off: float = 1.0,
        multipliers: Sequence[float] = DAN_MULTIPLIERS,
        bandwidth: Bandwidth = "mean",
        estimator: Estimator = "unbiased",
        adapt_logits: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        self.trade_off = trade_off
        self.multipliers = tuple(multipliers)
        self.bandwidth = bandwidth
        self.estimator = estimator
        self.adapt_logits = adapt_logits

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        out = self.forward_domains(batch)
        options = dict(multipliers=self.multipliers, bandwidth=self.bandwidth, estimator=self.estimator)
        discrepancy = mmd(out.source_features, out.target_features, **options)
        if self.adapt_logits:
            discrepancy = discrepancy + mmd(out.source_logits, out.target_logits, **options)
        return {
            "classification": self.classification_loss(out.source_logits, batch.source_y),
            "mmd": self.trade_off * discrepancy,
        }
