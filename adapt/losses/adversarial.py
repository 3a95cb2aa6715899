"""Domain-adversarial loss (Ganin et al., JMLR 2016) and its CDAN conditioning (Long et al., NeurIPS 2018)."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from ._utils import float32_region
from .entropy import entropy

DomainReduction = Literal["mean", "sum"]
WeightNormalization = Literal["per_domain", "joint"]


def domain_adversarial_loss(
    source_logits: torch.Tensor,
    target_logits: torch.Tensor,
    source_weights: torch.Tensor | None = None,
    target_weights: torch.Tensor | None = None,
    *,
    reduction: DomainReduction = "mean",
    weight_normalization: WeightNormalization = "per_domain",
) -> torch.Tensor:
    """Binary cross-entropy of a domain discriminator (source = 1, target = 0).

    With :math:`L_s = \\frac{1}{n}\\sum_i -\\log d(f(x^s_i))` and
    :math:`L_t = \\frac{1}{n'}\\sum_j -\\log(1-d(f(x^t_j)))`:

    * ``reduction="sum"``: :math:`L_s + L_t`, the domain term of Ganin et al., JMLR 2016, Eq. 18
      (and pytorch-adapt's DANN);
    * ``reduction="mean"``: :math:`(L_s + L_t)/2` (TLlib's ``DomainAdversarialLoss``), half of it.

    With per-example weights :math:`w` (CDAN+E, Long et al., NeurIPS 2018, Eq. 9):

    * ``weight_normalization="per_domain"``: :math:`L_s = \\sum_i w_i\\ell_i / \\sum_i w_i` over the
      source and likewise :math:`L_t` over the target (the authors' code, ``loss.CDAN``);
    * ``"joint"``: one weighted mean :math:`\\sum w\\ell / \\sum w` over both domains (TLlib's CDAN loss).

    Parameters
    ----------
    source_logits, target_logits : Tensor (B,) or (B, 1)
        Discriminator logits (no sigmoid applied).
    source_weights, target_weights : Tensor (B,), optional
        Per-sample weights (detach them if they should not be trained through).
    reduction : 'mean' or 'sum' of the two domain terms.
    weight_normalization : 'per_domain' or 'joint', used only with weights.

    Examples
    --------
    A discriminator that cannot tell the domains apart (every logit 0) scores :math:`\\log 2` per domain:

    >>> domain_adversarial_loss(torch.zeros(8), torch.zeros(6))  # log 2
    tensor(0.6931)
    >>> domain_adversarial_loss(torch.zeros(8), torch.zeros(6), reduction="sum")  # Eq. 18: 2 log 2
    tensor(1.3863)
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    if weight_normalization not in ("per_domain", "joint"):
        raise ValueError(f"weight_normalization must be 'per_domain' or 'joint', got {weight_normalization!r}")
    if (source_weights is None) != (target_weights is None):
        raise ValueError("give both source_weights and target_weights, or neither")
    s, t = source_logits.reshape(-1), target_logits.reshape(-1)
    with float32_region(s):
        s, t = s.float(), t.float()
        loss_s = F.binary_cross_entropy_with_logits(s, torch.ones_like(s), reduction="none")
        loss_t = F.binary_cross_entropy_with_logits(t, torch.zeros_like(t), reduction="none")
        scale = 0.5 if reduction == "mean" else 1.0
        if source_weights is None or target_weights is None:
            return scale * (loss_s.mean() + loss_t.mean())
        ws, wt = source_weights.reshape(-1).float(), target_weights.reshape(-1).float()
        if weight_normalization == "joint":
            return 2.0 * scale * ((ws * loss_s).sum() + (wt * loss_t).sum()) / (ws.sum() + wt.sum())
        return scale * ((ws * loss_s).sum() / ws.sum() + (wt * loss_t).sum() / wt.sum())


def multilinear_map(features: torch.Tensor, predictions: torch.Tensor) -> torch.Tensor:
    """Flattened outer product :math:`f \\otimes g` (Long et al., NeurIPS 2018, Eq. 4).

    Parameters
    ----------
    features : Tensor (B, D)
    predictions : Tensor (B, C), usually softmax outputs.

    Returns
    -------
    Tensor (B, C * D)

    Examples
    --------
    >>> multilinear_map(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[0.25, 0.75]]))
    tensor([[0.2500, 0.5000, 0.7500, 0.7500, 1.5000, 2.2500]])
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
