"""Backbones and heads."""

from .batchnorm import batch_norm_layers, dropout_disabled, frozen_running_statistics
from .clip import ClipFeatures, cached_clip_weights
from .digits import DTN, MLP, ConvNet, LeNet
from .heads import Bottleneck, DomainDiscriminator
from .resnet import RESNETS, ResNetFeatures, resnet_features
from .timm_backbone import TimmFeatures, cached_timm_weights
from .wide_resnet import WideResNet, WideResNetFeatures, read_robustbench_checkpoint

__all__ = [
    "DTN",
    "MLP",
    "RESNETS",
    "Bottleneck",
    "ClipFeatures",
    "ConvNet",
    "DomainDiscriminator",
    "LeNet",
    "ResNetFeatures",
    "TimmFeatures",
    "WideResNet",
    "WideResNetFeatures",
    "batch_norm_layers",
    "cached_clip_weights",
    "cached_timm_weights",
    "dropout_disabled",
    "frozen_running_statistics",
    "read_robustbench_checkpoint",
    "resnet_features",
]
