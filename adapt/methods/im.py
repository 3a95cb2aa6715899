"""IM: information maximization (Gomes et al., NeurIPS 2010; SHOT, ICML 2020)."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from .base import SearchSpace
from .registry import register_method
from .regularized import RegularizedSourceOnly


@register_method("im")
class IM(RegularizedSourceOnly):
    """Information maximization on the target: confident predictions for each example, all classes used.

    Gomes, Krause & Perona, "Discriminative Clustering by Regularized Information Maximization",
    NeurIPS 2010; the source-plus-IM form of Liang et al., SHOT, ICML 2020: :math:`L_y +
    \\text{trade\\_off}\\cdot` :func:`adapt.losses.information_maximization_loss` on the forward pass's
    outputs (the ``"im"`` regularizer, which any method can also take: ``regularizers={"im": w}``).

    Parameters
    ----------
    trade_off : weight of the IM term (entropy and diversity weighted 1:1, as in SHOT).
    """

    family = "regularizer"
    paper = "Gomes et al., NeurIPS 2010; Liang et al., ICML 2020"
    adaptation_term = "entropy minus diversity of the target predictions"

    regularizer = "im"
    search_space: ClassVar[SearchSpace] = {"trade_off": ("log_uniform", 0.1, 10.0)}

    def __init__(self, backbone: nn.Module, num_classes: int, *, trade_off: float = 1.0, **kwargs: Any) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        self.trade_off = trade_off
