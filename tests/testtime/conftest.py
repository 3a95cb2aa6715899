"""Trained models the test-time tests share (module-scoped, trained with plain loops: the test-time code is
what is tested)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from tta_models import blobs, bn_net, cnn_net


@pytest.fixture(scope="module")
def source_model() -> nn.Module:
    """A BatchNorm classifier trained on the source blobs (plain loop: the test-time code is what's tested)."""
    model = bn_net()
    x, y = blobs(600, 0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    for _ in range(300):
        idx = torch.randint(0, len(x), (64,), generator=g)
        optimizer.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def cnn_model() -> nn.Module:
    """The CNN trained a little on random images (plain loop), so that its predictions are not uniform."""
    model = cnn_net()
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(192, 1, 7, 7, generator=g), torch.arange(192) % 3
    x[:, :, :3] += y.view(-1, 1, 1, 1).float()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(60):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model.eval()
