"""Fixtures shared by the method tests."""

import pytest
import torch
from helpers import shifted_blobs

from adapt import SourceOnly
from adapt.models import MLP
from adapt.testing import toy_problem


@pytest.fixture(scope="module")
def toy():
    data = toy_problem(n=60)
    data["labeled"] = (data["xt"][:9], data["yt"][:9])
    return data


@pytest.fixture(scope="module")
def swapped():
    """A target whose classes sit where *other* source classes are: the source alone misleads (the nearest
    source centroid, computed below, scores near 0), so whatever beats it has learned from the 9 labeled
    target examples. They are kept out of the scored examples."""
    g = torch.Generator().manual_seed(7)
    centers = torch.randn(3, 6, generator=g) * 3
    ys, yt = torch.arange(90) % 3, torch.arange(90) % 3
    xs = centers[ys] + torch.randn(90, 6, generator=g)
    xt = centers[(yt + 1) % 3] + torch.randn(90, 6, generator=g)
    return {"xs": xs, "ys": ys, "xt": xt, "labeled": (xt[:9], yt[:9]), "scored": (xt[9:], yt[9:])}


@pytest.fixture(scope="module")
def source_model():
    xs, ys, xt, _ = shifted_blobs(0)
    torch.manual_seed(0)
    model = SourceOnly(MLP(5, (32,)), 4, bottleneck_dim=16)
    model.fit((xs, ys), xt, steps=300, lr=0.05, seed=0, verbose=False)
    return model
