"""JAN: joint adaptation networks (Long et al., ICML 2017)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from ..batch import Batch
from ..losses import DAN_MULTIPLIERS, jmmd
from ..losses.mmd import Bandwidth, Estimator
from .base import Adapter, SearchSpace
from .registry import register_method


@register_method("jan", "jmmd")
class JAN(Adapter):
    """Minimize the joint MMD of (features, softmax predictions) between the domains.

    Long et al., "Deep Transfer Learning with Joint Adaptation Networks", ICML 2017, Eq. 10:
    :math:`L_y + \\text{trade\\_off}\\cdot \\mathrm{JMMD}^2` over the layers
    :math:`\\{f(x), \\mathrm{softmax}(g(f(x)))\\}`, whose kernel is the product of one kernel per layer
    (see :func:`adapt.losses.jmmd`). Aligning the joint distribution of features and predictions
    lets class-conditional structure take part, which plain DAN ignores.

    Parameters
    ----------
    trade_off : weight of the JMMD term (1 in the paper).
    multipliers : bandwidth multipliers of the Gaussian family on the features (DAN's family).
    softmax_multipliers : bandwidth multipliers on the softmax layer (the paper uses one kernel).
    bandwidth : base bandwidth of each layer, as in :func:`adapt.losses.mmd`.
    estimator : 'unbiased', 'biased', 'linear' (Eq. 11) or 'cyclic'.
    """

    family = "discrepancy"
    paper = "Long et al., ICML 2017"
    adaptation_term = "joint MMD of features and predictions"

    min_batch_size = 2
    search_space: ClassVar[SearchSpace] = {"trade_off": ("log_uniform", 0.1, 10.0)}

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        trade_off: float = 1.0,
        multipliers: Sequence[float] = DAN_MULTIPLIERS,
        softmax_multipliers: Sequence[float] = (1.0,),
        bandwidth: Bandwidth = "mean",
        estimator: Estimator = "unbiased",
        **kwargs: Any,
    ) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        self.trade_off = trade_off
        self.multipliers = tuple(multipliers)
        self.softmax_multipliers = tuple(softmax_multipliers)
        self.bandwidth = bandwidth
        self.estimator = estimator

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        out = self.forward_domains(batch)
        discrepancy = jmmd(
            [out.source_features, out.source_logits.float().softmax(dim=1)],
            [out.target_features, out.target_logits.float().softmax(dim=1)],
            multipliers=[self.multipliers, self.softmax_multipliers],
            bandwidth=self.bandwidth,
            estimator=self.estimator,
        )
        return {
            "classification": self.classification_loss(out.source_logits, batch.source_y),
            "jmmd": self.trade_off * discrepancy,
        }
