"""CDAN and CDAN+E: conditional domain-adversarial networks (Long et al., NeurIPS 2018)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from ..losses import (
    domain_adversarial_loss,
    entropy_weights,
    gradient_reversal,
    multilinear_map,
    randomized_multilinear_map,
)
from ..models.heads import DomainDiscriminator
from ..train.engine import Batch
from ..train.schedules import grl_coefficient
from .base import Adapter, SearchSpace
from .registry import register_method


@register_method("cdan")
class CDAN(Adapter):
    """Adversarial alignment of the joint distribution of features and predictions.

    Long et al., "Conditional Adversarial Domain Adaptation", NeurIPS 2018, Eq. 7: the discriminator
    sees :math:`T(f, g) = f \\otimes g` (Eq. 4), or the randomized map (Eq. 6) when
    ``D * C > randomized_threshold``. With ``entropy_conditioning=True`` (CDAN+E, Eq. 9) each
    example is weighted by :math:`1 + e^{-H(g)}`. As in TLlib, the predictions ``g`` entering the
    map are detached; the gradient reaches the features through the reversal layer.

    Parameters
    ----------
    trade_off : weight of the conditional domain loss.
    entropy_conditioning : CDAN+E.
    randomized : force (True) or forbid (False) the randomized map; None decides by size.
    randomized_dim : output width d of the randomized map (1024 in the paper).
    randomized_threshold : the size ``D * C`` above which None switches to the randomized map.
    discriminator_hidden, discriminator_batch_norm, grl_max : as in :class:`~adapt.DANN`.
    """

    search_space: ClassVar[SearchSpace] = {
        "trade_off": ("log_uniform", 0.1, 3.0),
        "entropy_conditioning": ("choice", [False, True]),
    }

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        trade_off: float = 1.0,
        entropy_conditioning: bool = False,
        randomized: bool | None = None,
        randomized_dim: int = 1024,
        randomized_threshold: int = 4096,
        discriminator_hidden: Sequence[int] = (1024, 1024),
        discriminator_batch_norm: bool = True,
        grl_max: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        self.trade_off = trade_off
        self.entropy_conditioning = entropy_conditioning
        self.randomized = randomized
        self.randomized_dim = randomized_dim
        self.randomized_threshold = randomized_threshold
        self.discriminator_hidden = tuple(discriminator_hidden)
        self.discriminator_batch_norm = discriminator_batch_norm
        self.grl_max = grl_max

    def uses_randomized_map(self, feature_dim: int) -> bool:
        if self.randomized is not None:
            return self.randomized
        return feature_dim * self.num_classes > self.randomized_threshold

    def build_modules(self, feature_dim: int) -> None:
        if self.uses_randomized_map(feature_dim):
            # Fixed random projections: buffers, so they are saved and moved with the model.
            self.register_buffer("feature_projection", torch.randn(feature_dim, self.randomized_dim))
            self.register_buffer("prediction_projection", torch.randn(self.num_classes, self.randomized_dim))
            width = self.randomized_dim
        else:
            self.register_buffer("feature_projection", None)
            self.register_buffer("prediction_projection", None)
            width = feature_dim * self.num_classes
        self.discriminator = DomainDiscriminator(width, self.discriminator_hidden, self.discriminator_batch_norm)

    def conditional_map(self, features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        predictions = torch.softmax(logits.detach().float(), dim=1).to(features.dtype)
        if self.feature_projection is not None:
            return randomized_multilinear_map(
                features,
                predictions,
                self.feature_projection.to(features.dtype),
                self.prediction_projection.to(features.dtype),
            )
        return multilinear_map(features, predictions)

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        out = self.forward_domains(batch)
        n = out.source_features.shape[0]
        features = torch.cat([out.source_features, out.target_features])
        logits = torch.cat([out.source_logits, out.target_logits])
        joint = gradient_reversal(self.conditional_map(features, logits), grl_coefficient(progress, self.grl_max))
        domain_logits = self.discriminator(joint)
        weights_s = weights_t = None
        if self.entropy_conditioning:
            weights = entropy_weights(logits)
            weights_s, weights_t = weights[:n], weights[n:]
        return {
            "classification": self.classification_loss(out.source_logits, batch.source_y),
            "domain": self.trade_off
            * domain_adversarial_loss(domain_logits[:n], domain_logits[n:], weights_s, weights_t),
        }
