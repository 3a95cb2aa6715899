"""Backbones named in suite files: ``[backbones.<name>] kind = "<kind>"`` plus that kind's options.

A kind is registered with :func:`register_backbone`, which declares the options a suite may set and
their defaults; the suite loader rejects any other key before anything runs, and a run's identity hashes
the options with the defaults filled in (:func:`resolve_backbone`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from ..models import DTN, MLP, ClipFeatures, ConvNet, LeNet, ResNetFeatures, TimmFeatures, WideResNetFeatures
from ..registry import Registry

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}

#: ``build(options, input_shape) -> nn.Module``
BackboneBuilder = Callable[[dict[str, Any], tuple[int, ...]], nn.Module]


@dataclass(frozen=True)
class BackboneKind:
    """How to build one kind of backbone, the suite options it accepts and their defaults; ``revision``
    moves when the network ``build`` makes changes for the same options."""

    build: BackboneBuilder
    defaults: dict[str, Any]
    revision: int = 1

    @property
    def options(self) -> frozenset[str]:
        return frozenset(self.defaults)


BACKBONES: Registry[BackboneKind] = Registry("backbone kind")


def register_backbone(kind: str, **defaults: Any) -> Callable[[BackboneBuilder], BackboneBuilder]:
    """Decorator: register ``build(options, input_shape)`` as backbone ``kind``; its keyword arguments
    are the options a suite may set, with their defaults (``build`` receives every option, filled in)."""

    def decorate(build: BackboneBuilder) -> BackboneBuilder:
        BACKBONES.add(kind, BackboneKind(build, dict(defaults)))
        return build

    return decorate


@register_backbone("mlp", hidden=[64], activation="relu")
def _mlp(options: dict[str, Any], input_shape: tuple[int, ...]) -> nn.Module:
    if options["activation"] not in ACTIVATIONS:
        raise ValueError(f"unknown activation {options['activation']!r}; allowed: {', '.join(ACTIVATIONS)}")
    return MLP(int(np.prod(input_shape)), tuple(options["hidden"]), ACTIVATIONS[options["activation"]])


@register_backbone("convnet", channels=[16, 32], out_features=64)
def _convnet(options: dict[str, Any], input_shape: tuple[int, ...]) -> nn.Module:
    return ConvNet(input_shape[0], tuple(options["channels"]), options["out_features"], input_size=input_shape[-1])


@register_backbone("convnet-gn", channels=[16, 32], out_features=64)
def _convnet_gn(options: dict[str, Any], input_shape: tuple[int, ...]) -> nn.Module:
    """The ConvNet with GroupNorm in place of BatchNorm (for test-time methods that need no batch statistics)."""
    return ConvNet(input_shape[0], tuple(options["channels"]), options["out_features"], input_size=input_shape[-1],
                   norm="group")  # fmt: skip


@register_backbone("lenet")
def _lenet(options: dict[str, Any], input_shape: tuple[int, ...]) -> nn.Module:
    return LeNet(in_channels=input_shape[0])


@register_backbone("dtn")
def _dtn(options: dict[str, Any], input_shape: tuple[int, ...]) -> nn.Module:
    return DTN(in_channels=input_shape[0])


def _resnet(arch: str) -> BackboneBuilder:
    def build(options: dict[str, Any], input_shape: tuple[int, ...]) -> nn.Module:
        return ResNetFeatures(arch, options["weights"])

    return build


for _arch in ("resnet18", "resnet34", "resnet50", "resnet101"):
    register_backbone(_arch, weights=None)(_resnet(_arch))


@register_backbone("wide_resnet", depth=28, widen_factor=10, checkpoint=None, num_classes=10, inputs="unit",
                   sha256=None)  # fmt: skip
def _wide_resnet(options: dict[str, Any], input_shape: tuple[int, ...]) -> nn.Module:
    """RobustBench's WRN (``checkpoint``: its model file, e.g. the CIFAR-10 ``Standard``; ``inputs = "cifar10"``
    when the benchmark standardizes the images, as ``cifar10-c`` does)."""
    if tuple(input_shape) != (3, 32, 32):
        raise ValueError(f"a wide ResNet takes 32x32 RGB images (3, 32, 32); this task's are {tuple(input_shape)}")
    return WideResNetFeatures(**options)


@register_backbone("timm", name=None, pretrained=False, checkpoint=None, inputs="imagenet", layer_decay=None,
                   img_size=None, patch_size=None, drop_path_rate=0.0)  # fmt: skip
def _timm(options: dict[str, Any], input_shape: tuple[int, ...]) -> nn.Module:
    """Any timm model by ``name``; ``pretrained`` reads timm's weights from the local cache (nothing downloads),
    ``checkpoint`` a file of your own; ``img_size`` (and ``patch_size``) for a ViT on images of another size
    than its own (a pretrained ViT's patch embedding is resampled by timm)."""
    if not isinstance(options["name"], str):
        raise ValueError("a timm backbone needs name = '<a timm model name>' (timm.list_models() lists them)")
    extra = {key: options[key] for key in ("img_size", "patch_size") if options[key] is not None}
    if options["drop_path_rate"]:
        extra["drop_path_rate"] = options["drop_path_rate"]
    return TimmFeatures(options["name"], options["pretrained"], options["checkpoint"], inputs=options["inputs"],
                        layer_decay=options["layer_decay"], in_chans=input_shape[0], **extra)  # fmt: skip


@register_backbone("clip", name="ViT-B-32", pretrained=None, checkpoint=None, inputs="imagenet", config=None,
                   templates="openai")  # fmt: skip
def _clip(options: dict[str, Any], input_shape: tuple[int, ...]) -> nn.Module:
    """CLIP's image tower (open_clip ``name`` with its ``pretrained`` tag, from the local cache); as a pretrained
    source (``[source] pretrained = true``), its zero-shot classifier of the task's class names."""
    return ClipFeatures(**options)


def resolve_backbone(spec: dict[str, Any]) -> dict[str, Any]:
    """A suite's ``{kind = ..., ...}`` table with every option of its kind, defaults filled in."""
    kind = BACKBONES.get(spec["kind"])
    options = {k: v for k, v in spec.items() if k != "kind"}
    unknown = sorted(set(options) - kind.options)
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for backbone kind {spec['kind']!r}")
    return {"kind": BACKBONES.canonical(spec["kind"]), **kind.defaults, **options}


def build_backbone(spec: dict[str, Any], input_shape: tuple[int, ...]) -> nn.Module:
    """Build the backbone described by a suite's ``{kind = ..., ...}`` table for inputs of ``input_shape``."""
    resolved = resolve_backbone(spec)
    return BACKBONES.get(spec["kind"]).build({k: v for k, v in resolved.items() if k != "kind"}, input_shape)
