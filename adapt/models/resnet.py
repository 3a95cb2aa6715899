"""torchvision ResNet feature extractors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from ..errors import InputError

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101")


class ResNetFeatures(nn.Module):
    """A torchvision ResNet without its classification layer: images -> pooled features (B, D).

    Parameters
    ----------
    arch : one of 'resnet18', 'resnet34', 'resnet50', 'resnet101'.
    weights : torchvision weights name or enum (for example ``"IMAGENET1K_V1"`` or
        ``"DEFAULT"``), or None for random initialization. They are read from the local torch cache
        (``torch.hub.get_dir()/checkpoints``, under ``$TORCH_HOME``); when they are not there, an
        error says which file to put where, unless ``download=True``.
    download : fetch missing weights from torchvision's server (checked against the hash in the name).
    """

    def __init__(self, arch: str = "resnet50", weights: str | None = None, download: bool = False) -> None:
        super().__init__()
        if arch not in RESNETS:
            raise ValueError(f"unknown ResNet {arch!r}; choose one of {', '.join(RESNETS)}")
        if weights is not None and not download:
            require_cached_weights(arch, weights)
        net = torchvision.models.get_model(arch, weights=weights)
        self.out_features: int = net.fc.in_features
        #: The pretrained classification layer's (weight, bias), kept out of the module's state: a source
        #: model that is the pretrained classifier itself takes them (``[source] pretrained = true``).
        self.pretrained_head = (net.fc.weight.detach().clone(), net.fc.bias.detach().clone()) if weights else None
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


def cached_weights_path(arch: str, weights: Any) -> Path:
    """Where torchvision keeps the file of ``arch``'s ``weights`` (a name such as 'IMAGENET1K_V1' or an enum)."""
    try:
        enum = torchvision.models.get_model_weights(arch)
        entry = enum[weights] if isinstance(weights, str) else enum(weights)
    except (KeyError, ValueError) as exc:
        names = ", ".join(["DEFAULT", *(w.name for w in torchvision.models.get_model_weights(arch))])
        raise ValueError(f"unknown {arch} weights {weights!r}; torchvision has {names}") from exc
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(entry.url).name


def require_cached_weights(arch: str, weights: Any) -> Path:
    """The cached file of ``arch``'s ``weights``; an error naming the file and how to get it when absent."""
    path = cached_weights_path(arch, weights)
    if not path.is_file():
        raise InputError(
            f"{arch} weights {weights} are not in the local torch cache: no file {path}. On a machine with internet, "
            f"run python -c \"import torchvision; torchvision.models.get_model('{arch}', weights='{weights}')\" and "
            f"copy {path.name} from its $TORCH_HOME/hub/checkpoints to {path.parent} (or set TORCH_HOME to a "
            f"folder holding hub/checkpoints/{path.name}), or pass download=True"
        )
    return path


def resnet_features(arch: str = "resnet50", weights: str | None = None, download: bool = False) -> ResNetFeatures:
    """Build a :class:`ResNetFeatures` (``weights`` as in torchvision, None for random init)."""
    return ResNetFeatures(arch, weights, download)
