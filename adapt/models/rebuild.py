"""Rebuild a standard backbone from what a checkpoint stores, so ``load`` needs no backbone for them."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import InputError
from .clip import ClipFeatures
from .digits import DTN, MLP, ConvNet, LeNet
from .resnet import ResNetFeatures
from .timm_backbone import TimmFeatures
from .wide_resnet import WideResNetFeatures

#: The backbones a checkpoint can rebuild by itself: each has ``config()`` returning its constructor arguments.
STANDARD_BACKBONES: dict[str, type[nn.Module]] = {
    cls.__name__: cls
    for cls in (MLP, LeNet, DTN, ConvNet, ResNetFeatures, WideResNetFeatures, TimmFeatures, ClipFeatures)
}


def backbone_spec(backbone: nn.Module) -> dict[str, Any] | None:
    """``{"class": name, "config": {...}}`` for a standard backbone, None for any other module (or a
    standard one built with parts a file cannot name, such as a custom activation)."""
    cls = type(backbone)
    if STANDARD_BACKBONES.get(cls.__name__) is not cls:
        return None
    config = backbone.config()  # type: ignore[operator]
    return None if config is None else {"class": cls.__name__, "config": config}


def rebuild_backbone(spec: dict[str, Any]) -> nn.Module:
    """The backbone :func:`backbone_spec` described (random weights: the checkpoint's are loaded next)."""
    try:
        return STANDARD_BACKBONES[spec["class"]](**spec["config"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"cannot rebuild the backbone {spec!r} from the checkpoint ({exc}); pass backbone=") from exc


def describe(backbone: nn.Module) -> str:
    """A one-line name for error messages: the class and, for standard backbones, its arguments."""
    spec = backbone_spec(backbone)
    if spec is None:
        return type(backbone).__name__
    return f"{spec['class']}({', '.join(f'{k}={v!r}' for k, v in spec['config'].items())})"
