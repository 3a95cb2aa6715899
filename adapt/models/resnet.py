"""torchvision ResNet feature extractors."""

from __future__ import annotations

from typing import Any

import torch
import torchvision
from torch import nn

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101")


class ResNetFeatures(nn.Module):
    """A torchvision ResNet without its classification layer: images -> pooled features (B, D).

    Parameters
    ----------
    arch : one of 'resnet18', 'resnet34', 'resnet50', 'resnet101'.
    weights : torchvision weights name or enum (for example ``"IMAGENET1K_V1"`` or
        ``"DEFAULT"``), or None for random initialization. Weights are only downloaded when asked
        for (torchvision caches them under ``$TORCH_HOME``).
    """

    def __init__(self, arch: str = "resnet50", weights: str | None = None) -> None:
        super().__init__()
        if arch not in RESNETS:
            raise ValueError(f"unknown ResNet {arch!r}; choose one of {', '.join(RESNETS)}")
        net = torchvision.models.get_model(arch, weights=weights)
        self.out_features: int = net.fc.in_features
        net.fc = nn.Identity()
        self.net = net
        self.arch = arch
        self.pretrained = weights is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def config(self) -> dict[str, Any]:
        """Constructor arguments to rebuild the architecture; ``weights=None``, since a checkpoint
        holding the trained weights is loaded over it (nothing is downloaded)."""
        return {"arch": self.arch, "weights": None}


def resnet_features(arch: str = "resnet50", weights: str | None = None) -> ResNetFeatures:
    """Build a :class:`ResNetFeatures` (``weights`` as in torchvision, None for random init)."""
    return ResNetFeatures(arch, weights)
