"""BNM: batch nuclear-norm maximization (Cui et al., CVPR 2020)."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from .base import SearchSpace
from .registry import register_method
from .regularized import RegularizedSourceOnly


@register_method("bnm")
class BNM(RegularizedSourceOnly):
    """Maximize the nuclear norm of the target prediction matrix: confident and diverse predictions.

    Cui et al., "Towards Discriminability and Diversity: Batch Nuclear-norm Maximization under Label
    Insufficient Situations", CVPR 2020: :math:`L_y + \\text{trade\\_off}\\cdot`
    :func:`adapt.losses.bnm_loss` on the forward pass's
    outputs (the ``"bnm"`` regularizer, which any method can also take: ``regularizers={"bnm": w}``).

    Parameters
    ----------
    trade_off : weight of the BNM term (lambda = 1 in the paper).
    """

    family = "regularizer"
    paper = "Cui et al., CVPR 2020"
    adaptation_term = "nuclear norm of the target predictions"

    regularizer = "bnm"
    search_space: ClassVar[SearchSpace] = {"trade_off": ("log_uniform", 0.1, 10.0)}

    def __init__(self, backbone: nn.Module, num_classes: int, *, trade_off: float = 1.0, **kwargs: Any) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        self.trade_off = trade_off
