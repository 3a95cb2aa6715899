"""AFN: stepwise adaptive feature norm (Xu et al., ICCV 2019)."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from .base import SearchSpace
from .registry import register_method
from .regularized import RegularizedSourceOnly


@register_method("afn")
class AFN(RegularizedSourceOnly):
    """Stepwise adaptive feature norm (SAFN): grow the feature norms of both domains step by step.

    Xu et al., "Larger Norm More Transferable: An Adaptive Feature Norm Approach for Unsupervised Domain
    Adaptation", ICCV 2019: :math:`L_y + \\text{trade\\_off}\\cdot`
    :func:`adapt.losses.adaptive_feature_norm_loss` on the forward pass's
    outputs (the ``"afn"`` regularizer, which any method can also take: ``regularizers={"afn": w}``).

    Parameters
    ----------
    trade_off : weight of the norm term (lambda = 0.05 in the paper, step size 1).
    """

    family = "regularizer"
    paper = "Xu et al., ICCV 2019"
    adaptation_term = "stepwise growth of the feature norms"

    regularizer = "afn"
    search_space: ClassVar[SearchSpace] = {"trade_off": ("log_uniform", 0.005, 0.5)}

    def __init__(self, backbone: nn.Module, num_classes: int, *, trade_off: float = 0.05, **kwargs: Any) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        self.trade_off = trade_off
