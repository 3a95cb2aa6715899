"""Backbones and heads."""

from .digits import DTN, MLP, ConvNet, LeNet
from .heads import Bottleneck, DomainDiscriminator
from .resnet import RESNETS, ResNetFeatures, resnet_features

__all__ = ["DTN", "MLP", "ConvNet", "RESNETS", "Bottleneck", "DomainDiscriminator", "LeNet", "ResNetFeatures", "resnet_features"]
