"""BSP: the batch spectral penalty."""

import pytest
import torch

from adapt import losses


def test_batch_spectral_penalty_closed_form():
    features = torch.diag(torch.tensor([3.0, 2.0, 0.5]))  # singular values 3, 2, 0.5
    assert float(losses.batch_spectral_penalty(features)) == pytest.approx(9.0)
    assert float(losses.batch_spectral_penalty(features, k=2)) == pytest.approx(13.0)
    with pytest.raises(ValueError, match="k must be at least 1"):
        losses.batch_spectral_penalty(features, k=0)
    with pytest.raises(ValueError, match=r"expects \(batch, features\)"):
        losses.batch_spectral_penalty(torch.ones(3))
