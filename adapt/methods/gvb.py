"""GVB: gradually vanishing bridge (Cui et al., CVPR 2020)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..batch import Batch, Outputs
from ..losses import gradient_reversal
from .adversarial import AdversarialAdapter
from .base import SearchSpace
from .registry import register_method


class Bridged(nn.Module):
    """``model(x) - bridge(x)`` and the bridge's output: a module with a bridge beside it (GVB)."""

    def __init__(self, model: nn.Module, bridge: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.bridge = bridge

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bridge = self.bridge(x)
        return self.model(x) - bridge, bridge


@register_method("gvb")
class GVB(AdversarialAdapter):
    """Adversarial alignment of the predictions, with bridges on the classifier and on the discriminator
    that are pushed to vanish.

    Cui et al., "Gradually Vanishing Bridge for Adversarial Domain Adaptation", CVPR 2020 (GVB-GD).
    The classifier's logits are :math:`C(f) - B_g(f)` and the discriminator's are
    :math:`D(p) - B_d(p)` on the softmax predictions p seen through gradient reversal; the loss is

    .. math:: L_y + \\text{trade\\_off}\\,L_d + \\text{generator\\_bridge}\\,\\overline{|B_g|}
              + \\text{discriminator\\_bridge}\\,\\overline{|B_d|},

    the bridge terms being mean absolute outputs over both domains (as pytorch-adapt's ``GVBHook``).
    The bridges take up what the domains cannot share at first, and shrink as alignment proceeds.

    Parameters
    ----------
    generator_bridge, discriminator_bridge : weights of the two bridge penalties (1 in the paper).
    Others : see :class:`~adapt.methods.adversarial.AdversarialAdapter` (the discriminator reads the C
        class probabilities).
    """

    family = "adversarial"
    paper = "Cui et al., CVPR 2020"
    adaptation_term = "adversarial on predictions with vanishing bridges on classifier and discriminator"
    search_space: ClassVar[SearchSpace] = {"trade_off": ("log_uniform", 0.1, 3.0)}

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        generator_bridge: float = 1.0,
        discriminator_bridge: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        self.generator_bridge = generator_bridge
        self.discriminator_bridge = discriminator_bridge

    def build_modules(self, feature_dim: int) -> None:
        self.classifier_bridge = nn.Linear(feature_dim, self.num_classes)
        self.discriminator = Bridged(
            self.make_discriminator(self.num_classes, feature_dim),
            self.make_discriminator(self.num_classes, feature_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.embed(x)
        return self.classifier(features) - self.classifier_bridge(features)

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        n = batch.source_x.shape[0]
        features = self.embed(torch.cat([batch.source_x, batch.target_x]))
        generator_bridge = self.classifier_bridge(features)
        logits = self.classifier(features) - generator_bridge
        self.remember_outputs(Outputs(features[:n], features[n:], logits[:n], logits[n:]))
        probabilities = logits.float().softmax(dim=1)
        reversed_probabilities = gradient_reversal(probabilities, self.grl_coefficient(progress, batch.step))
        domain_logits, discriminator_bridge = self.discriminator(reversed_probabilities)
        return {
            "classification": self.classification_loss(logits[:n], batch.source_y),
            "domain": self.discriminator_loss(domain_logits[:n], domain_logits[n:]),
            "generator_bridge": self.generator_bridge * generator_bridge.float().abs().mean(),
            "discriminator_bridge": self.discriminator_bridge * discriminator_bridge.float().abs().mean(),
        }
