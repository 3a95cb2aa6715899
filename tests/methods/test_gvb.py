"""GVB: the bridges and the terms."""

import pytest
import torch
from helpers import _built
from torch import nn


def test_gvb_bridges_match_pytorch_adapt_model_with_bridge():
    pa_layers = pytest.importorskip("pytorch_adapt.layers")
    from adapt.methods.gvb import Bridged

    torch.manual_seed(0)
    model, bridge = nn.Linear(5, 3), nn.Linear(5, 3)
    x = torch.randn(6, 5)
    ours, ours_bridge = Bridged(model, bridge)(x)
    theirs, theirs_bridge = pa_layers.ModelWithBridge(model, bridge)(x, return_bridge=True)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(ours_bridge, theirs_bridge)


def test_gvb_terms():
    model, batch = _built("gvb", discriminator_hidden=(8,))
    terms = model.loss(batch, 0.5)
    features = model.embed(torch.cat([batch.source_x, batch.target_x]))
    bridge = model.classifier_bridge(features)
    torch.testing.assert_close(terms["generator_bridge"], bridge.abs().mean())
    torch.testing.assert_close(model(batch.source_x), (model.classifier(features) - bridge)[:32])
