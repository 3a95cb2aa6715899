"""Prediction-entropy losses: entropy, diversity, information maximization, BNM, MCC and MME's."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from ._utils import float32_region

Reduction = Literal["mean", "sum", "none"]


def _check_logits(logits: torch.Tensor, loss: str) -> None:
    if logits.ndim != 2:
        raise ValueError(f"{loss} expects 2-D (batch, classes) logits, got shape {tuple(logits.shape)}")


def _reduce(values: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    if reduction == "none":
        return values
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def entropy(logits: torch.Tensor, reduction: Reduction = "mean") -> torch.Tensor:
    """Shannon entropy of the softmax predictions, :math:`H(p) = -\\sum_c p_c \\log p_c`.

    Grandvalet & Bengio, "Semi-supervised Learning by Entropy Minimization", NeurIPS 2004, Eq. 2.
    Computed from logits with ``log_softmax`` (no epsilon) in float32.

    Parameters
    ----------
    logits : Tensor (B, C)
    reduction : 'mean' (default), 'sum' or 'none' (per-sample, shape (B,)).

    Examples
    --------
    Equal logits give the uniform distribution, the most uncertain one: :math:`\\log C`.

    >>> entropy(torch.zeros(4, 5))  # log 5
    tensor(1.6094)
    >>> entropy(torch.tensor([[0.0, 0.0], [100.0, 0.0]]), reduction="none").round(decimals=4)  # log 2; sure
    tensor([0.6931, 0.0000])
    """
    _check_logits(logits, "entropy")
    with float32_region(logits):
        log_p = torch.log_softmax(logits.float(), dim=1)
        p = log_p.exp()
        # 0 log 0 = 0: a logit of -inf (an excluded entry) contributes nothing. The -inf is replaced
        # *before* the product: masking the product afterwards leaves 0 * -inf = NaN in the gradient.
        finite_log_p = torch.where(p > 0, log_p, torch.zeros_like(log_p))
        values = -(p * finite_log_p).sum(dim=1)
    return _reduce(values, reduction)


def diversity_loss(logits: torch.Tensor) -> torch.Tensor:
    """Negative entropy of the batch-mean prediction, :math:`-H(\\bar p)`, :math:`\\bar p = \\frac1B\\sum_i p_i`.

    The diversity term of information maximization (Gomes, Krause & Perona, NeurIPS 2010, Eq. 4;
    Liang et al., SHOT, ICML 2020, Eq. 2). Minimizing it spreads predictions over the classes.

    Parameters
    ----------
    logits : Tensor (B, C)
    """
    _check_logits(logits, "diversity_loss")
    with float32_region(logits):
        mean_p = torch.softmax(logits.float(), dim=1).mean(dim=0)
        return (mean_p * torch.log(mean_p.clamp_min(torch.finfo(torch.float32).tiny))).sum()


def information_maximization_loss(logits: torch.Tensor, diversity_weight: float = 1.0) -> torch.Tensor:
    """Information-maximization loss :math:`\\frac1B\\sum_i H(p_i) - \\beta H(\\bar p)`.

    Gomes, Krause & Perona, NeurIPS 2010, Eq. 4 (the negative mutual information between inputs
    and predicted labels when :math:`\\beta = 1`); SHOT (Liang et al., ICML 2020, Eq. 2).

    Parameters
    ----------
    logits : Tensor (B, C)
    diversity_weight : float, :math:`\\beta`.

    Examples
    --------
    Confident predictions spread evenly over the classes reach the minimum, :math:`-\\log C`; the
    same confidence on one class only is penalized by the diversity term.

    >>> information_maximization_loss(torch.eye(4) * 50)  # -log 4
    tensor(-1.3863)
    >>> abs(float(information_maximization_loss(torch.eye(4)[[0, 0, 0, 0]] * 50))) < 1e-6  # H = 0, diversity 0
    True
    """
    return entropy(logits) + diversity_weight * diversity_loss(logits)


def bnm_loss(logits: torch.Tensor) -> torch.Tensor:
    """Batch nuclear-norm maximization, :math:`-\\frac1B \\lVert P \\rVert_*` with :math:`P = \\mathrm{softmax}(Z)`.

    Cui et al., "Towards Discriminability and Diversity: Batch Nuclear-norm Maximization under
    Label Insufficient Situations", CVPR 2020, Eq. 9.

    Parameters
    ----------
    logits : Tensor (B, C)
    """
    _check_logits(logits, "bnm_loss")
    with float32_region(logits):
        probs = torch.softmax(logits.float(), dim=1)
        return -torch.linalg.matrix_norm(probs, ord="nuc") / probs.shape[0]


def mcc_loss(logits: torch.Tensor, temperature: float = 2.5) -> torch.Tensor:
    """Minimum class confusion on target logits.

    Jin et al., "Minimum Class Confusion for Versatile Domain Adaptation", ECCV 2020, Eqs. 1-6:
    temperature-scaled predictions :math:`\\hat Y = \\mathrm{softmax}(Z/T)`, entropy weights
    :math:`W_{ii} = B\\,(1+e^{-H(\\hat y_i)}) / \\sum_j (1+e^{-H(\\hat y_j)})`, class confusion
    :math:`C = \\hat Y^\\top W \\hat Y`, row-normalized :math:`\\tilde C`, and the loss
    :math:`\\frac{1}{|\\mathcal C|}\\sum_j \\sum_{j' \\ne j} \\tilde C_{jj'}`.

    Parameters
    ----------
    logits : Tensor (B, C), target logits.
    temperature : float, :math:`T` (2.5 in the paper).

    Examples
    --------
    Identical uniform predictions confuse every class with the others, :math:`(C-1)/C`:

    >>> mcc_loss(torch.zeros(4, 3))  # 2/3
    tensor(0.6667)
    """
    _check_logits(logits, "mcc_loss")
    with float32_region(logits):
        probs = torch.softmax(logits.float() / temperature, dim=1)
        sample_entropy = entropy(logits.detach().float() / temperature, reduction="none")
        weights = 1.0 + torch.exp(-sample_entropy)
        weights = probs.shape[0] * weights / weights.sum()
        confusion = (probs * weights.unsqueeze(1)).t() @ probs
        # A class that no example predicts has an all-zero row (its probabilities underflow to 0);
        # it has no confusion to penalize, so its row stays 0 instead of becoming 0/0 = NaN.
        row_sums = confusion.sum(dim=1, keepdim=True)
        confusion = confusion / row_sums.clamp_min(torch.finfo(torch.float32).tiny)
        num_classes = confusion.shape[0]
        return (confusion.sum() - confusion.trace()) / num_classes


def prediction_kl(reference_logits: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Mean KL divergence :math:`\\mathrm{KL}(p_{ref} \\,\\|\\, p)` between two models' softmax predictions.

    The trust region of the DIRT-T objective (Shu et al., ICLR 2018): :math:`\\mathbb E_{x}\\big[\\mathrm{KL}
    (h_{\\theta_{n-1}}(x) \\,\\|\\, h_\\theta(x))\\big]`, with the reference (teacher) side held fixed.

    Parameters
    ----------
    reference_logits : Tensor (B, C), no gradient flows into it.
    logits : Tensor (B, C).
    """
    _check_logits(logits, "prediction_kl")
    with float32_region(logits):
        reference = reference_logits.detach().float().log_softmax(dim=1)
        return F.kl_div(logits.float().log_softmax(dim=1), reference, reduction="batchmean", log_target=True)


def minimax_entropy_loss(logits: torch.Tensor, epsilon: float = 1e-5) -> torch.Tensor:
    """MME's adversarial entropy term: the mean of :math:`\\sum_c p_c \\log(p_c + \\epsilon)`, the
    *negative* entropy of the target predictions.

    Saito et al., "Semi-supervised Domain Adaptation via Minimax Entropy", ICCV 2019; as their code's
    ``adentropy`` (``utils/loss.py``) computes it, with its epsilon 1e-5. The classifier minimizes it
    (it spreads its prototypes to *maximize* the target entropy); the features receive the reversed
    gradient, through :func:`~adapt.losses.gradient_reversal` before the classifier, and so *minimize*
    the entropy (cluster around the prototypes).

    >>> minimax_entropy_loss(torch.zeros(3, 4)).item() < -1.38  # -log 4, the most uncertain
    True
    """
    _check_logits(logits, "minimax_entropy_loss")
    with float32_region(logits):
        p = torch.softmax(logits.float(), dim=1)
        return (p * torch.log(p + epsilon)).sum(dim=1).mean()


def soft_likelihood_ratio(
    logits: torch.Tensor, clip: float = 0.99, eps: float = 1e-5, reduction: Reduction = "none"
) -> torch.Tensor:
    """The soft likelihood ratio :math:`-\\sum_c p_c \\log\\big(\\frac{p_c}{1 - p_c} + \\epsilon\\big)`, with
    :math:`p` clipped at ``clip`` (ROID's self-training loss: unlike entropy, its gradient does not vanish
    for confident predictions).

    Marsden, Döbler & Yang, "Universal Test-time Adaptation through Weight Ensembling, Diversity Weighting,
    and Prior Correction", WACV 2024; as the authors' ``SoftLikelihoodRatio``
    (mariodoebler/test-time-adaptation at 8b2ed63, ``classification/utils/losses.py`` lines 32-41).

    >>> soft_likelihood_ratio(torch.zeros(1, 2)).round(decimals=4)  # p = 1/2: log(1 + eps)
    tensor([-0.])
    """
    _check_logits(logits, "soft_likelihood_ratio")
    with float32_region(logits):
        p = torch.softmax(logits.float(), dim=1).clamp(min=0.0, max=clip)
        values = -(p * torch.log(p / (1 - p) + eps)).sum(dim=1)
    return _reduce(values, reduction)


def symmetric_cross_entropy(
    logits: torch.Tensor, reference_logits: torch.Tensor, alpha: float = 0.5, reduction: Reduction = "none"
) -> torch.Tensor:
    """The symmetric cross-entropy between two predictions,
    :math:`-(1-\\alpha)\\sum_c q_c \\log p_c - \\alpha \\sum_c p_c \\log q_c` (``p`` from ``logits``, ``q`` from
    ``reference_logits``; gradients flow into both).

    Wang et al., "Symmetric Cross Entropy for Robust Learning with Noisy Labels", ICCV 2019 (with soft
    labels); ROID's consistency term, as the authors' ``SymmetricCrossEntropy``
    (mariodoebler/test-time-adaptation at 8b2ed63, ``classification/utils/losses.py`` lines 13-19).
    """
    _check_logits(logits, "symmetric_cross_entropy")
    if logits.shape != reference_logits.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and reference_logits {tuple(reference_logits.shape)} differ")
    with float32_region(logits):
        log_p, log_q = logits.float().log_softmax(dim=1), reference_logits.float().log_softmax(dim=1)
        values = -(1 - alpha) * (log_q.exp() * log_p).sum(dim=1) - alpha * (log_p.exp() * log_q).sum(dim=1)
    return _reduce(values, reduction)
