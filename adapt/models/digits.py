"""Digit backbones of the ADDA / TLlib digit protocols."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import InputError


def _check_widths(net: str, **widths: Any) -> None:
    """Every width, channel count and size a positive integer, named when not (torch's own error names none)."""
    for name, value in widths.items():
        many = isinstance(value, (list, tuple))
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (value if many else [value])):
            raise ValueError(f"{net} {name} must be {'positive integers' if many else 'a positive integer'}, "
                             f"got {value!r}")  # fmt: skip


class LeNet(nn.Module):
    """LeNet feature extractor for 28x28 grayscale digits (MNIST, USPS).

    Tzeng et al., "Adversarial Discriminative Domain Adaptation", CVPR 2017 (the LeNet encoder);
    conv(20, 5x5)-pool-ReLU-conv(50, 5x5)-dropout-pool-ReLU-fc(500)-ReLU-dropout.

    Input (B, 1, 28, 28) -> features (B, 500).
    """

    def __init__(self, in_channels: int = 1, out_features: int = 500, dropout: float = 0.5) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_features = out_features
        self.dropout = dropout
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, 20, kernel_size=5),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Conv2d(20, 50, kernel_size=5),
            nn.Dropout2d(dropout),
            nn.MaxPool2d(2),
            nn.ReLU(),
        )
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(50 * 4 * 4, out_features), nn.ReLU(), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x))

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-like): ``LeNet(**net.config())`` builds the same architecture."""
        return {"in_channels": self.in_channels, "out_features": self.out_features, "dropout": self.dropout}


class DTN(nn.Module):
    """DTN feature extractor for 32x32 RGB digits (SVHN, MNIST-M, MNIST resized).

    The digit network of Hoffman et al., CyCADA (ICML 2018) and TLlib's SVHN->MNIST protocol:
    three stride-2 5x5 convolutions (64, 128, 256) with BatchNorm, dropout and ReLU, then fc(512).

    Input (B, 3, 32, 32) -> features (B, 512).
    """

    def __init__(self, in_channels: int = 3, out_features: int = 512) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_features = out_features

        def block(cin: int, cout: int, dropout: float) -> list[nn.Module]:
            return [
                nn.Conv2d(cin, cout, kernel_size=5, stride=2, padding=2),
                nn.BatchNorm2d(cout),
                nn.Dropout2d(dropout),
                nn.ReLU(),
            ]

        self.conv = nn.Sequential(*block(in_channels, 64, 0.1), *block(64, 128, 0.3), *block(128, 256, 0.5))
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(256 * 4 * 4, out_features),
            nn.BatchNorm1d(out_features),
            nn.ReLU(),
            nn.Dropout(0.5),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x))

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-like): ``DTN(**net.config())`` builds the same architecture."""
        return {"in_channels": self.in_channels, "out_features": self.out_features}


class MLP(nn.Module):
    """Small fully connected feature extractor for vector data (the DANN moons experiment).

    Ganin et al., JMLR 2016, Sec. 5.1: one hidden layer of 15 units.
    """

    def __init__(
        self, in_features: int, hidden: tuple[int, ...] = (15,), activation: type[nn.Module] | str = nn.ReLU
    ) -> None:
        super().__init__()
        _check_widths("MLP", in_features=in_features, hidden=hidden)
        if isinstance(activation, str):  # a torch.nn class name, as stored by config()
            if not isinstance(getattr(nn, activation, None), type):
                raise ValueError(f"MLP activation {activation!r} is not a torch.nn class (e.g. 'ReLU', 'Tanh')")
            activation = getattr(nn, activation)
        self.in_features, self.hidden, self.activation = in_features, tuple(hidden), activation
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), activation()]
            width = h
        self.net = nn.Sequential(*layers)
        self.out_features = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def config(self) -> dict[str, Any] | None:
        """Constructor arguments (JSON-like): ``MLP(**net.config())`` builds the same architecture;
        None when the activation is not a ``torch.nn`` class (it could not be named in a file)."""
        name = getattr(self.activation, "__name__", "")
        if getattr(nn, name, None) is not self.activation:
            return None
        return {"in_features": self.in_features, "hidden": list(self.hidden), "activation": name}


class ConvNet(nn.Module):
    """A small, fast CNN for low-resolution images (the offline digit shifts, 16x16).

    Stride-2 3x3 convolutions with BatchNorm and ReLU (``channels`` wide, one per block; each
    halves the resolution), then fc(``out_features``)-ReLU. Strided convolutions instead of
    max-pooling: on a CPU they are several times faster at this size. ``norm="group"`` puts GroupNorm
    (8 groups, or one per channel when fewer) in place of BatchNorm: no batch statistics, as the
    GroupNorm ResNets and the transformers of the test-time benchmarks.

    Input (B, C, input_size, input_size) -> features (B, out_features).
    """

    def __init__(
        self,
        in_channels: int = 1,
        channels: tuple[int, ...] = (16, 32),
        out_features: int = 64,
        input_size: int = 16,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        _check_widths("ConvNet", in_channels=in_channels, channels=channels, out_features=out_features,
                      input_size=input_size)  # fmt: skip
        if norm not in ("batch", "group"):
            raise ValueError(f"ConvNet norm must be 'batch' or 'group', got {norm!r}")
        self.in_channels = in_channels
        self.out_features = out_features
        self.channels, self.input_size, self.norm = tuple(channels), input_size, norm
        layers: list[nn.Module] = []
        width, size = in_channels, input_size
        for c in channels:
            normalization = nn.BatchNorm2d(c) if norm == "batch" else nn.GroupNorm(min(8, c), c)
            layers += [nn.Conv2d(width, c, kernel_size=3, stride=2, padding=1), normalization, nn.ReLU()]
            width, size = c, (size + 1) // 2
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(width * size * size, out_features), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4 and tuple(x.shape[-2:]) != (self.input_size, self.input_size):  # else: a shapeless matmul error
            s, (h, w) = self.input_size, x.shape[-2:]
            raise InputError(
                f"ConvNet(input_size={s}) takes {s}x{s} images, got {h}x{w}: build it with "
                f"ConvNet({self.in_channels}, input_size={h}) or resize the images to {s}x{s}"
            )
        return self.fc(self.conv(x))

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-like): ``ConvNet(**net.config())`` builds the same architecture."""
        config = {"in_channels": self.in_channels, "channels": list(self.channels), "out_features": self.out_features,
                  "input_size": self.input_size}  # fmt: skip
        return config if self.norm == "batch" else {**config, "norm": self.norm}
