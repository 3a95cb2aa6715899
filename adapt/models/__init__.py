"""Backbones and heads."""

from .batchnorm import batch_norm_layers, dropout_disabled, frozen_running_statistics
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
    "batch_norm_layers",
    "dropout_disabled",
    "frozen_running_statistics",
    "resnet_features",
]
