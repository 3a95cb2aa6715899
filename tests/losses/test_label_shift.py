"""Class importance weights under label shift (Combes et al., NeurIPS 2020): closed forms."""

import pytest
import torch

from adapt.losses.label_shift import label_shift_weights


def joint(prior: torch.Tensor, accuracy: float, seed: int = 0) -> torch.Tensor:
    """A source joint distribution C[predicted, true] with the given per-class accuracy, off-diagonal mass
    spread unevenly (so that C is not symmetric)."""
    k = len(prior)
    off = torch.rand(k, k, generator=torch.Generator().manual_seed(seed)) ** 3
    off.fill_diagonal_(0)
    off = off / off.sum(0, keepdim=True) * (1 - accuracy)
    return (off + accuracy * torch.eye(k)) * prior


def test_a_perfect_classifier_gives_the_ratio_of_class_proportions():
    p_s = torch.tensor([0.1, 0.2, 0.3, 0.4])
    p_t = torch.tensor([0.4, 0.3, 0.2, 0.1])
    torch.testing.assert_close(label_shift_weights(torch.diag(p_s), p_t, p_s), p_t / p_s)


def test_it_recovers_the_weights_from_a_confused_classifier():
    """mu = C w (Lemma 3.2) holds exactly here: the QP's minimum is the true w, where the mean target
    prediction divided by p_S (what the classifier's confusion biases) is not."""
    p_s = torch.full((6,), 1 / 6)
    c = joint(p_s, accuracy=0.7)
    w = torch.tensor([2.5, 1.5, 1.0, 0.6, 0.3, 0.1])
    w = w / (w @ p_s)
    mu = c @ w
    estimate = label_shift_weights(c, mu, p_s)
    torch.testing.assert_close(estimate, w, atol=1e-4, rtol=1e-4)
    assert (mu / p_s - w).abs().max() > 0.3  # the naive ratio is far off


def test_weights_are_nonnegative_and_normalized_on_the_source():
    p_s = torch.tensor([0.5, 0.3, 0.2])
    c = joint(p_s, accuracy=0.6, seed=3)
    mu = torch.tensor([0.9, 0.1, 0.0])  # not reachable by any w >= 0: the constraint binds
    w = label_shift_weights(c, mu, p_s)
    assert (w >= 0).all()
    assert float(w @ p_s) == pytest.approx(1.0, abs=1e-6)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"confusion \(K, K\)"):
        label_shift_weights(torch.eye(3), torch.ones(4) / 4, torch.ones(3) / 3)
