"""Backbones named in suite files: ``[backbones.<name>] kind = "<kind>"`` plus that kind's options.

A kind is registered with :func:`register_backbone`, which declares the options a suite may set; the
suite loader rejects any other key before anything runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from ..models import DTN, MLP, ConvNet, LeNet, ResNetFeatures
from ..registry import Registry

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}

#: ``build(options, input_shape) -> nn.Module``
BackboneBuilder = Callable[[dict[str, Any], tuple[int, ...]], nn.Module]


@dataclass(frozen=True)
class BackboneKind:
    """How to build one kind of backbone, and the suite options it accepts."""

    build: BackboneBuilder
    options: frozenset[str]


BACKBONES: Registry[BackboneKind] = Registry("backbone kind")


def register_backbone(kind: str, *options: str) -> Callable[[BackboneBuilder], BackboneBuilder]:
    """Decorator: register ``build(options, input_shape)`` as backbone ``kind`` with its allowed options."""

    def decorate(build: BackboneBuilder) -> BackboneBuilder:
        BACKBONES.add(kind, BackboneKind(build, frozenset(options)))
        return build

    return decorate


@register_backbone("mlp", "hidden", "activation")
def _mlp(options: dict[str, Any], input_shape: tuple[int, ...]) -> nn.Module:
    activation = ACTIVATIONS[options.get("activation", "relu")]
    return MLP(int(np.prod(input_shape)), tuple(options.get("hidden", (64,))), activation)


@register_backbone("convnet", "channels", "out_features")
def _convnet(options: dict[str, Any], input_shape: tuple[int, ...]) -> nn.Module:
    channels = tuple(options.get("channels", (16, 32)))
    return ConvNet(input_shape[0], channels, options.get("out_features", 64), input_size=input_shape[-1])


@register_backbone("lenet")
def _lenet(options: dict[str, Any], input_shape: tuple[int, ...]) -> nn.Module:
    return LeNet(in_channels=input_shape[0])


@register_backbone("dtn")
def _dtn(options: dict[str, Any], input_shape: tuple[int, ...]) -> nn.Module:
    return DTN(in_channels=input_shape[0])


def _resnet(arch: str) -> BackboneBuilder:
    def build(options: dict[str, Any], input_shape: tuple[int, ...]) -> nn.Module:
        return ResNetFeatures(arch, options.get("weights"))

    return build


for _arch in ("resnet18", "resnet34", "resnet50", "resnet101"):
    register_backbone(_arch, "weights")(_resnet(_arch))


def build_backbone(spec: dict[str, Any], input_shape: tuple[int, ...]) -> nn.Module:
    """Build the backbone described by a suite's ``{kind = ..., ...}`` table for inputs of ``input_shape``."""
    kind = BACKBONES.get(spec["kind"])
    options = {k: v for k, v in spec.items() if k != "kind"}
    unknown = sorted(set(options) - kind.options)
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for backbone kind {spec['kind']!r}")
    return kind.build(options, input_shape)
