"""MDD: margin disparity discrepancy (Zhang et al., ICML 2019)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..batch import Batch
from ..losses import gradient_reversal
from ..losses.discrepancy import margin_disparity_discrepancy
from ..train.schedules import warm_start_grl_coefficient
from .base import Adapter, SearchSpace
from .registry import register_method


@register_method("mdd")
class MDD(Adapter):
    """An adversarial head maximizes the margin disparity with the classifier; the features minimize it.

    Zhang et al., "Bridging Theory and Algorithm for Domain Adaptation", ICML 2019:
    :math:`L_y - \\text{trade\\_off}\\cdot D_\\gamma(f, f')`, where the adversarial head :math:`f'` sees
    the features through a gradient reversal layer (see
    :func:`adapt.losses.discrepancy.margin_disparity_discrepancy`). The head has the classifier's
    architecture (one linear layer), so it ranges over the same hypotheses, as the bound requires.

    Parameters
    ----------
    trade_off : weight of the disparity term (1 in the paper).
    margin : :math:`\\gamma` (4 in the paper for Office-31).
    grl_max, grl_warm_start_steps, grl_warm_start_alpha : the reversal coefficient grows as
        :math:`\\text{grl\\_max}\\,(2/(1+e^{-\\alpha i/N})-1)` with the step i, to 0.1 as in TLlib's
        MDD (``WarmStartGradientReverseLayer(alpha=1, lo=0, hi=0.1, max_iters=1000)``).
    """

    family = "classifier disagreement"
    paper = "Zhang et al., ICML 2019"
    adaptation_term = "margin disparity with an adversarial head"

    search_space: ClassVar[SearchSpace] = {
        "trade_off": ("log_uniform", 0.1, 3.0),
        "margin": ("choice", [1.0, 2.0, 4.0]),
    }

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        trade_off: float = 1.0,
        margin: float = 4.0,
        grl_max: float = 0.1,
        grl_warm_start_steps: int = 1000,
        grl_warm_start_alpha: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        self.trade_off = trade_off
        self.margin = margin
        self.grl_max = grl_max
        self.grl_warm_start_steps = grl_warm_start_steps
        self.grl_warm_start_alpha = grl_warm_start_alpha

    def build_modules(self, feature_dim: int) -> None:
        self.adversary = nn.Linear(feature_dim, self.num_classes)

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        out = self.forward_domains(batch)
        coefficient = warm_start_grl_coefficient(
            batch.step, self.grl_max, alpha=self.grl_warm_start_alpha, max_steps=self.grl_warm_start_steps
        )
        n = out.source_features.shape[0]
        adversary_logits = self.adversary(
            gradient_reversal(torch.cat([out.source_features, out.target_features]), coefficient)
        )
        disparity = margin_disparity_discrepancy(
            out.source_logits, adversary_logits[:n], out.target_logits, adversary_logits[n:], self.margin
        )
        return {
            "classification": self.classification_loss(out.source_logits, batch.source_y),
            "disparity": -self.trade_off * disparity,
        }
