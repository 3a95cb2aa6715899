"""SymNets: its losses and its predictions."""

import pytest
import torch
from helpers import _built

from adapt import losses


def test_symnets_domain_loss_and_entropy_match_pytorch_adapt():
    pa_layers = pytest.importorskip("pytorch_adapt.layers")
    g = torch.Generator().manual_seed(0)
    cs, ct = torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g)
    for half in (0, 1):
        expected = pa_layers.SymNetsDomainLoss(half_idx=half)(cs, ct)
        torch.testing.assert_close(losses.symmetric_domain_loss(cs, ct, half), expected)
    torch.testing.assert_close(losses.symmetric_entropy(cs, ct), pa_layers.SymNetsEntropyLoss()(cs, ct))


def test_symnets_category_confusion_is_the_papers_equation():
    """Zhang et al. 2019: -1/2 log p_{y} - 1/2 log p_{y+C} of the joint softmax. (pytorch-adapt's
    SymNetsCategoryLoss applies cross_entropy to the probabilities, a second softmax: not this.)"""
    cs, ct, y = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]]), torch.tensor([0])
    p = torch.softmax(torch.tensor([1.0, 0.0, 0.0, 2.0]), 0)
    expected = -(0.5 * torch.log(p[0]) + 0.5 * torch.log(p[2]))
    torch.testing.assert_close(losses.symmetric_category_confusion(cs, ct, y), expected)


def test_symnets_predicts_with_the_target_classifier():
    model, batch = _built("symnets")
    x = batch.target_x
    torch.testing.assert_close(model(x), model.target_classifier(model.embed(x)))
