"""Backbones named in suite files."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from ..models import DTN, MLP, ConvNet, LeNet, ResNetFeatures

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


#: kind -> allowed options
BACKBONE_OPTIONS: dict[str, set[str]] = {
    "mlp": {"hidden", "activation"},
    "convnet": {"channels", "out_features"},
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
        channels = tuple(options.get("channels", (16, 32)))
        return ConvNet(input_shape[0], channels, options.get("out_features", 64), input_size=input_shape[-1])
    if kind == "lenet":
        return LeNet(in_channels=input_shape[0])
    if kind == "dtn":
        return DTN(in_channels=input_shape[0])
    return ResNetFeatures(kind, options.get("weights"))
