"""BSP: batch spectral penalization (Chen et al., ICML 2019)."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from .base import SearchSpace
from .registry import register_method
from .regularized import RegularizedSourceOnly


@register_method("bsp")
class BSP(RegularizedSourceOnly):
    """Penalize the largest singular value of the source and of the target feature matrix.

    Chen et al., "Transferability vs. Discriminability: Batch Spectral Penalization for Adversarial
    Domain Adaptation", ICML 2019: :math:`L_y + \\text{trade\\_off}\\cdot`
    :func:`adapt.losses.batch_spectral_penalty` on the forward pass's
    outputs (the ``"bsp"`` regularizer, which any method can also take: ``regularizers={"bsp": w}``).

    Parameters
    ----------
    trade_off : weight of the penalty (1e-4 in the paper, which adds it to DANN or CDAN:
        ``create("dann", regularizers={"bsp": 1e-4})``).
    """

    family = "regularizer"
    paper = "Chen et al., ICML 2019"
    adaptation_term = "largest singular value of the features"

    regularizer = "bsp"
    search_space: ClassVar[SearchSpace] = {"trade_off": ("log_uniform", 1e-5, 1e-3)}

    def __init__(self, backbone: nn.Module, num_classes: int, *, trade_off: float = 1e-4, **kwargs: Any) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        self.trade_off = trade_off
