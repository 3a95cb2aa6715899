"""Backbones and heads."""

from .digits import DTN, MLP, ConvNet, LeNet
from .heads import Bottleneck, DomainDiscriminator
from .resnet import RESNETS, ResNetFeatures, resnet_features

__all__ = [
    "DTN",
    "MLP",
    "RESNETS",
    "Bottleneck",
    "ConvNet",
    "DomainDiscriminator",
    "LeNet",
    "ResNetFeatures",
    "resnet_features",
]
