"""RTN: the residual source classifier."""

import pytest
import torch
import torch.nn.functional as F
from helpers import _built


def test_rtn_source_classifier_is_the_target_one_plus_a_residual():
    pa_layers = pytest.importorskip("pytorch_adapt.layers")
    model, batch = _built("rtn")
    logits = model(batch.source_x)
    torch.testing.assert_close(model.source_logits(logits), pa_layers.PlusResidual(model.residual)(logits))
    terms = model.loss(batch, 0.5)
    torch.testing.assert_close(terms["classification"], F.cross_entropy(model.source_logits(logits), batch.source_y))
