"""Backbones named in suite files."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from ..models import DTN, MLP, LeNet, ResNetFeatures

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


class ConvNet(nn.Module):
    """A small CNN for low-resolution images (the offline digit tasks): two conv blocks, fc(128)."""

    def __init__(self, in_channels: int, out_features: int = 128) -> None:
        super().__init__()
        self.out_features = out_features
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
            nn.Flatten(), nn.Linear(64 * 16, out_features), nn.ReLU(),
        )  # fmt: skip

    def forward(self, x):
        return self.net(x)


#: kind -> allowed options
BACKBONE_OPTIONS: dict[str, set[str]] = {
    "mlp": {"hidden", "activation"},
    "convnet": {"out_features"},
    "lenet": set(),
    "dtn": set(),
    "resnet18": {"weights"},
    "resnet34": {"weights"},
    "resnet50": {"weights"},
    "resnet101": {"weights"},
}


def build_backbone(spec: dict[str, Any], input_shape: tuple[int, ...]) -> nn.Module:
    """Build the backbone described by a suite's ``{kind = ..., ...}`` table for inputs of ``input_shape``."""
    kind = spec["kind"]
    options = {k: v for k, v in spec.items() if k != "kind"}
    if kind == "mlp":
        activation = ACTIVATIONS[options.get("activation", "relu")]
        return MLP(int(np.prod(input_shape)), tuple(options.get("hidden", (64,))), activation)
    if kind == "convnet":
        return ConvNet(input_shape[0], options.get("out_features", 128))
    if kind == "lenet":
        return LeNet(in_channels=input_shape[0])
    if kind == "dtn":
        return DTN(in_channels=input_shape[0])
    return ResNetFeatures(kind, options.get("weights"))
