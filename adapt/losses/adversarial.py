"""Domain-adversarial loss (Ganin et al., JMLR 2016) and its CDAN conditioning (Long et al., NeurIPS 2018)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._utils import float32_region
from .entropy import entropy


def domain_adversarial_loss(
    source_logits: torch.Tensor,
    target_logits: torch.Tensor,
    source_weights: torch.Tensor | None = None,
    target_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Binary cross-entropy of a domain discriminator (source = 1, target = 0).

    Ganin et al., JMLR 2016, Eq. 18 (the domain term of the DANN objective):
    :math:`L_d = -\\frac{1}{n}\\sum_i \\log d(f(x^s_i)) - \\frac{1}{n'}\\sum_j \\log(1-d(f(x^t_j)))`,
    averaged here over both domains together. With weights it is the weighted mean used by CDAN+E
    (Long et al., NeurIPS 2018, Eq. 9).

    Parameters
    ----------
    source_logits, target_logits : Tensor (B,) or (B, 1)
        Discriminator logits (no sigmoid applied).
    source_weights, target_weights : Tensor (B,), optional
        Per-sample weights; when given, the loss is :math:`\\sum w_i \\ell_i / \\sum w_i`.
    """
    logits = torch.cat([source_logits.reshape(-1), target_logits.reshape(-1)])
    labels = torch.cat([torch.ones_like(source_logits.reshape(-1)), torch.zeros_like(target_logits.reshape(-1))])
    with float32_region(logits):
        per_sample = F.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction="none")
        if source_weights is None and target_weights is None:
            return per_sample.mean()
        if source_weights is None or target_weights is None:
            raise ValueError("give both source_weights and target_weights, or neither")
        weights = torch.cat([source_weights.reshape(-1), target_weights.reshape(-1)]).float()
        return (weights * per_sample).sum() / weights.sum()


def multilinear_map(features: torch.Tensor, predictions: torch.Tensor) -> torch.Tensor:
    """Flattened outer product :math:`f \\otimes g` (Long et al., NeurIPS 2018, Eq. 4).

    Parameters
    ----------
    features : Tensor (B, D)
    predictions : Tensor (B, C), usually softmax outputs.

    Returns
    -------
    Tensor (B, C * D)
    """
    batch = features.shape[0]
    return torch.bmm(predictions.unsqueeze(2), features.unsqueeze(1)).reshape(batch, -1)


def randomized_multilinear_map(
    features: torch.Tensor,
    predictions: torch.Tensor,
    feature_projection: torch.Tensor,
    prediction_projection: torch.Tensor,
) -> torch.Tensor:
    """Randomized multilinear map :math:`\\frac{1}{\\sqrt{d}}(R_f f) \\odot (R_g g)`.

    Long et al., NeurIPS 2018, Eq. 6; used when ``D * C`` is too large (the paper switches at 4096).
    The inner product of two mapped vectors is an unbiased estimate of the inner product of their
    multilinear maps when the entries of ``R_f`` and ``R_g`` are i.i.d. standard normal.

    Parameters
    ----------
    features : Tensor (B, D)
    predictions : Tensor (B, C)
    feature_projection : Tensor (D, d), fixed random matrix.
    prediction_projection : Tensor (C, d), fixed random matrix.

    Returns
    -------
    Tensor (B, d)
    """
    out_dim = feature_projection.shape[1]
    projected = (features @ feature_projection) * (predictions @ prediction_projection)
    return projected / math.sqrt(out_dim)


def entropy_weights(logits: torch.Tensor) -> torch.Tensor:
    """Entropy-conditioning weights :math:`w = 1 + e^{-H(g)}` of CDAN+E.

    Long et al., NeurIPS 2018, Eq. 9. Confident (low-entropy) examples weigh more. The weights are
    detached: they weight the discriminator loss but are not trained through.

    Parameters
    ----------
    logits : Tensor (B, C), classifier logits.

    Returns
    -------
    Tensor (B,)
    """
    return 1.0 + torch.exp(-entropy(logits.detach(), reduction="none"))
