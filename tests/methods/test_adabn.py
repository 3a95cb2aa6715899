"""AdaBN: predictions with target statistics."""

import pytest
import torch
from torch import nn

from adapt import methods
from adapt.testing import default_backbone, toy_problem
from adapt.train.data import InputError


def test_adabn_predicts_with_target_statistics():
    d = toy_problem()
    xs, ys = d["xs"], d["ys"]
    xt = d["xt"] + 10.0  # a large offset the source statistics know nothing about
    torch.manual_seed(0)
    model = methods.AdaBN(nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU()), 3)
    model.fit((xs, ys), xt, steps=60, batch_size=16, device="cpu", verbose=False)
    norm = model.backbone[1]
    with torch.no_grad():
        target_mean = model.backbone[0](xt).mean(0)
        source_mean = model.backbone[0](xs).mean(0)
    assert torch.allclose(norm.running_mean, target_mean, atol=0.3 * float((target_mean - source_mean).abs().max()))
    assert (norm.running_mean - target_mean).abs().max() < (norm.running_mean - source_mean).abs().max()


def test_adabn_needs_batch_norm():
    d = toy_problem()
    with pytest.raises(InputError, match=r"no BatchNorm layer.*bottleneck_dim"):
        methods.AdaBN(default_backbone(), 3).fit((d["xs"], d["ys"]), d["xt"], steps=1, device="cpu", verbose=False)
