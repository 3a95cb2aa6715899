"""Penalties on the feature matrix itself: its spectrum (BSP) and its norms (AFN)."""

from __future__ import annotations

import torch

from ._utils import float32_region


def batch_spectral_penalty(features: torch.Tensor, k: int = 1) -> torch.Tensor:
    """Sum of the squares of the ``k`` largest singular values of a feature batch.

    Chen et al., "Transferability vs. Discriminability: Batch Spectral Penalization for Adversarial
    Domain Adaptation", ICML 2019 (one domain's term; the paper adds the source's and the
    target's): :math:`\\sum_{i=1}^{k} \\sigma_i^2(F)` for the (B, D) matrix F.

    Parameters
    ----------
    features : (B, D) tensor.
    k : number of leading singular values penalized (1 in the paper).
    """
    if features.ndim != 2:
        raise ValueError(f"batch_spectral_penalty expects (batch, features), got shape {tuple(features.shape)}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    with float32_region(features):
        singular_values = torch.linalg.svdvals(features.float())
        return singular_values[:k].pow(2).sum()


def adaptive_feature_norm_loss(features: torch.Tensor, step_size: float = 1.0) -> torch.Tensor:
    """Stepwise adaptive feature norm: pull every feature norm ``step_size`` beyond its current value.

    Xu et al., "Larger Norm More Transferable: An Adaptive Feature Norm Approach for Unsupervised
    Domain Adaptation", ICCV 2019, the stepwise
    variant (SAFN):
    :math:`\\frac1B\\sum_i \\big(\\|h_i\\|_2 - (\\|h_i\\|_2^{\\text{detached}} + \\Delta r)\\big)^2`.
    The value is always :math:`\\Delta r^2`; its gradient grows every norm by about ``step_size``.

    Parameters
    ----------
    features : (B, D) tensor.
    step_size : :math:`\\Delta r` (1.0 in the paper).
    """
    if features.ndim != 2:
        raise ValueError(f"adaptive_feature_norm_loss expects (batch, features), got shape {tuple(features.shape)}")
    with float32_region(features):
        norms = features.float().norm(p=2, dim=1)
        return (norms - (norms.detach() + step_size)).pow(2).mean()
