"""AFN: the adaptive feature norm loss."""

import pytest
import torch

from adapt import losses


def test_adaptive_feature_norm_value_is_step_squared_and_gradient_grows_norms():
    features = torch.randn(8, 4, requires_grad=True)
    value = losses.adaptive_feature_norm_loss(features, step_size=0.5)
    assert value.item() == pytest.approx(0.25)
    value.backward()
    # gradient descent moves every feature along itself, away from zero: norms grow
    radial = (features.grad * features.detach()).sum(dim=1)
    assert bool((radial < 0).all())
