"""Self-training with confident pseudo-labels across weak and strong views (FixMatch, Sohn et al., NeurIPS 2020)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..batch import Batch, Outputs
from .augment import strong_view, weak_view
from .base import Adapter, SearchSpace
from .registry import register_method


@register_method("fixmatch", "self_training")
class FixMatch(Adapter):
    """Pseudo-label the target on a weak view, where the model is confident; train on a strong view.

    Sohn et al., "FixMatch: Simplifying Semi-Supervised Learning with Consistency and Confidence",
    NeurIPS 2020 (the unlabeled loss), with the unlabeled batch taken from the target domain:

    .. math:: L_y + \\text{trade\\_off}\\cdot\\frac1B\\sum_i \\mathbb 1[\\max_c q_{ic} \\ge \\tau]\\;
              \\mathrm{CE}\\big(\\hat y_i, p(\\cdot \\mid \\mathcal A_{strong}(x^t_i))\\big),

    where :math:`q = p(\\cdot \\mid \\mathcal A_{weak}(x^t))` (no gradient) and :math:`\\hat y = \\arg\\max q`.
    The views come from :mod:`adapt.methods.augment` (images: shifts, colour jitter and Cutout;
    vectors: noise and feature dropout). Source, weak and strong target batches go through the
    network together, so BatchNorm sees all three.

    Parameters
    ----------
    trade_off : :math:`\\lambda_u` (1 in the paper).
    threshold : :math:`\\tau` (0.95 in the paper).
    """

    family = "self-training"
    paper = "Sohn et al., NeurIPS 2020"
    adaptation_term = "confident weak-view pseudo-labels taught to strong views of the target"
    search_space: ClassVar[SearchSpace] = {
        "trade_off": ("log_uniform", 0.1, 3.0),
        "threshold": ("uniform", 0.7, 0.99),
    }
    #: an untrained model is never 95% sure: in the contract tests every pseudo-label counts
    contract_hparams: ClassVar[dict[str, Any]] = {"threshold": 0.0}

    def __init__(
        self, backbone: nn.Module, num_classes: int, *, trade_off: float = 1.0, threshold: float = 0.95, **kwargs: Any
    ) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        if not 0 <= threshold <= 1:
            raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
        self.trade_off = trade_off
        self.threshold = threshold

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        n, m = batch.source_x.shape[0], batch.target_x.shape[0]
        with torch.no_grad():
            weak, strong = weak_view(batch.target_x), strong_view(batch.target_x)
        features = self.embed(torch.cat([batch.source_x, weak, strong]))
        logits = self.classifier(features)
        source_logits, weak_logits, strong_logits = logits[:n], logits[n : n + m], logits[n + m :]
        self.remember_outputs(Outputs(features[:n], features[n : n + m], source_logits, weak_logits))
        confidence, pseudo_labels = weak_logits.detach().float().softmax(dim=1).max(dim=1)
        mask = (confidence >= self.threshold).float()
        per_example = F.cross_entropy(strong_logits.float(), pseudo_labels, reduction="none")
        return {
            "classification": self.classification_loss(source_logits, batch.source_y),
            "pseudo_label": self.trade_off * (mask * per_example).mean(),
        }
