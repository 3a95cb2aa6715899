"""The small models and streams the test-time tests share (plain functions; the fixtures are in conftest.py)."""

import torch
from torch import nn


def bn_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 16), nn.BatchNorm1d(16),
                         nn.ReLU(), nn.Linear(16, 3))  # fmt: skip


def blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centers = torch.tensor([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]])
    y = torch.arange(n) % 3
    return centers[y] + torch.randn(n, 2, generator=g), y


def target_stream(n: int = 600, seed: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """The source blobs shrunk and moved (49% accuracy unadapted): a shift BatchNorm statistics can undo."""
    x, y = blobs(n, seed)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return (x * 0.5 + torch.tensor([4.0, 4.0]))[order], y[order]


def cnn_net(seed: int = 0) -> nn.Module:
    """A small CNN with BatchNorm2d layers and a BatchNorm1d bottleneck, as our ConvNet + bottleneck."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2),
                         nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 3 * 3, 8), nn.BatchNorm1d(8),
                         nn.ReLU(), nn.Linear(8, 3))  # fmt: skip


def cnn_stream() -> torch.Tensor:
    g = torch.Generator().manual_seed(4)
    x = torch.randn(256, 1, 7, 7, generator=g) * 1.5 + 0.5
    x[:, :, :3] += (torch.arange(256) % 3).view(-1, 1, 1, 1).float()
    return x
