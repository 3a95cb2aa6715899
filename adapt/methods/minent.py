"""MinEnt: entropy minimization (Grandvalet & Bengio, NeurIPS 2004)."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from .base import SearchSpace
from .registry import register_method
from .regularized import RegularizedSourceOnly


@register_method("minent")
class MinEnt(RegularizedSourceOnly):
    """Minimize the entropy of the target predictions (the classic UDA baseline).

    Grandvalet & Bengio, "Semi-supervised Learning by Entropy Minimization", NeurIPS 2004: :math:`L_y +
    \\text{trade\\_off}\\cdot` :func:`adapt.losses.entropy` on the forward pass's
    outputs (the ``"minent"`` regularizer, which any method can also take: ``regularizers={"minent": w}``).

    Parameters
    ----------
    trade_off : weight of the entropy term. The paper tunes it per problem; 0.1 keeps it below the
        source loss.
    """

    family = "regularizer"
    paper = "Grandvalet & Bengio, NeurIPS 2004"
    adaptation_term = "entropy of the target predictions"

    regularizer = "minent"
    search_space: ClassVar[SearchSpace] = {"trade_off": ("log_uniform", 0.01, 1.0)}

    def __init__(self, backbone: nn.Module, num_classes: int, *, trade_off: float = 0.1, **kwargs: Any) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        self.trade_off = trade_off
