"""CDAN and CDAN+E: conditional domain-adversarial networks (Long et al., NeurIPS 2018)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import nn

from ..batch import Batch
from ..losses import entropy_weights, multilinear_map, randomized_multilinear_map
from .adversarial import AdversarialAdapter
from .base import SearchSpace
from .registry import register_method


@register_method("cdan")
class CDAN(AdversarialAdapter):
    """Adversarial alignment of the joint distribution of features and predictions.

    Long et al., "Conditional Adversarial Domain Adaptation", NeurIPS 2018, Eq. 7: the discriminator
    sees :math:`T(f, g) = f \\otimes g` (Eq. 4), or the randomized map (Eq. 6). With
    ``entropy_conditioning=True`` (CDAN+E, Eq. 9) each example is weighted by :math:`1 + e^{-H(g)}`.
    The predictions ``g`` entering the map and the weights are detached (as TLlib; the authors'
    code lets a reversed gradient flow through the entropy of the weights).

    Parameters
    ----------
    entropy_conditioning : CDAN+E.
    entropy_weighting : 'per_domain' -- the weights are normalized within the source and within
        the target (the authors' code); 'joint' -- over both domains together (TLlib).
    randomized : force (True) or forbid (False) the randomized map; None decides by size: the
        randomized map when ``D * C > randomized_threshold``.
    randomized_dim : output width d of the randomized map (1024 in the paper).
    randomized_threshold : the size ``D * C`` above which None switches to the randomized map.
    Others : see :class:`~adapt.methods.adversarial.AdversarialAdapter`.

    Presets
    -------
    ``create("cdan", preset=...)``; each is checked against a transcription of its source in the tests.

    * ``"official"`` -- the authors' code (thuml/CDAN at c904cd3, ``loss.CDAN``): multilinear map,
      per-domain entropy weights, the mean of the domain losses, reversal ramp alpha 10 over 10000 steps,
      a 1024-1024 discriminator with dropout 0.5. Their discriminator counts its calls from 1, the
      engine's steps count from 0: the ramp here is theirs one step later (at most 5e-4 apart).
    * ``"tllib"`` -- TLlib's ``ConditionalDomainAdversarialLoss``: multilinear map, joint entropy
      weights, the mean domain loss, warm-start reversal (alpha 1, 1000 steps), 1024-1024 with BatchNorm.
    """

    family = "adversarial"
    paper = "Long et al., NeurIPS 2018"
    adaptation_term = "discriminator on features x predictions"

    search_space: ClassVar[SearchSpace] = {
        "trade_off": ("log_uniform", 0.1, 3.0),
        "entropy_conditioning": ("choice", [False, True]),
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "official": {
            "trade_off": 1.0,
            "randomized": False,
            "entropy_weighting": "per_domain",
            "domain_loss": "mean",
            "grl_schedule": "warm_start",
            "grl_max": 1.0,
            "grl_warm_start_steps": 10000,
            "grl_warm_start_alpha": 10.0,
            "discriminator_hidden": (1024, 1024),
            "discriminator_batch_norm": False,
            "discriminator_dropout": 0.5,
        },
        "tllib": {
            "trade_off": 1.0,
            "randomized": False,
            "entropy_weighting": "joint",
            "domain_loss": "mean",
            "grl_schedule": "warm_start",
            "grl_max": 1.0,
            "grl_warm_start_steps": 1000,
            "grl_warm_start_alpha": 1.0,
            "discriminator_hidden": (1024, 1024),
            "discriminator_batch_norm": True,
            "discriminator_dropout": 0.0,
        },
    }

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        entropy_conditioning: bool = False,
        entropy_weighting: Literal["per_domain", "joint"] = "per_domain",
        randomized: bool | None = None,
        randomized_dim: int = 1024,
        randomized_threshold: int = 4096,
        **kwargs: Any,
    ) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        if entropy_weighting not in ("per_domain", "joint"):
            raise ValueError(f"entropy_weighting must be 'per_domain' or 'joint', got {entropy_weighting!r}")
        self.entropy_conditioning = entropy_conditioning
        self.entropy_weighting = entropy_weighting
        self.randomized = randomized
        self.randomized_dim = randomized_dim
        self.randomized_threshold = randomized_threshold

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
        self.discriminator = self.make_discriminator(width, feature_dim)

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
        logits = torch.cat([out.source_logits, out.target_logits])
        joint = self.conditional_map(torch.cat([out.source_features, out.target_features]), logits)
        source_domain, target_domain = self.domain_logits(joint[:n], joint[n:], progress, batch.step)
        weights_s = weights_t = None
        if self.entropy_conditioning:
            weights = entropy_weights(logits)
            weights_s, weights_t = weights[:n], weights[n:]
        return {
            "classification": self.classification_loss(out.source_logits, batch.source_y),
            "domain": self.discriminator_loss(
                source_domain, target_domain, weights_s, weights_t, self.entropy_weighting
            ),
        }
