"""Disagreement between two classifiers on the same features (MCD, MDD) and domain confusion."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._utils import float32_region


def classifier_discrepancy(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of two classifiers' softmax outputs.

    Saito et al., "Maximum Classifier Discrepancy for Unsupervised Domain Adaptation", CVPR 2018,
    Eq. 1: :math:`d(p_1, p_2) = \\frac1K\\sum_k |p_{1k} - p_{2k}|`, averaged over the batch.

    Parameters
    ----------
    logits_a, logits_b : (B, C) logits of the two classifiers on the same inputs.
    """
    if logits_a.shape != logits_b.shape:
        shapes = f"{tuple(logits_a.shape)} vs {tuple(logits_b.shape)}"
        raise ValueError(f"the two classifiers' logits differ in shape: {shapes}")
    with float32_region(logits_a):
        return (logits_a.float().softmax(dim=1) - logits_b.float().softmax(dim=1)).abs().mean()


def margin_disparity_discrepancy(
    source_logits: torch.Tensor,
    source_adversary_logits: torch.Tensor,
    target_logits: torch.Tensor,
    target_adversary_logits: torch.Tensor,
    margin: float = 4.0,
    offset: float = 1e-6,
) -> torch.Tensor:
    """The empirical margin disparity discrepancy :math:`D_\\gamma` between an adversarial head and the
    main classifier.

    Zhang et al., "Bridging Theory and Algorithm for Domain Adaptation", ICML 2019: the
    cross-entropy form that the paper trains with, as TLlib's ``ClassificationMarginDisparityDiscrepancy``
    computes it:

    .. math::
        D_\\gamma = \\gamma\\,\\mathbb E_s \\log \\sigma_{h(x)}(f'(x))
        + \\mathbb E_t \\log\\big(1 - \\sigma_{h(x)}(f'(x))\\big),

    with :math:`h(x)` the main classifier's predicted class (no gradient flows through it) and
    :math:`\\sigma` the softmax of the adversarial head's logits. The adversary maximizes it, the
    features minimize it. :math:`\\log(1-p)` is computed as ``log(clamp(1 - p + offset, max=1))``,
    as in TLlib, so a sure adversary does not give an infinite gradient.

    Parameters
    ----------
    source_logits, target_logits : (B, C) logits of the main classifier (only their argmax is used).
    source_adversary_logits, target_adversary_logits : (B, C) logits of the adversarial head.
    margin : :math:`\\gamma` (4 in the paper's Office-31 experiments).
    offset : the shift inside the target log.
    """
    with float32_region(source_adversary_logits):
        source_prediction = source_logits.detach().argmax(dim=1)
        target_prediction = target_logits.detach().argmax(dim=1)
        source_term = -F.cross_entropy(source_adversary_logits.float(), source_prediction)
        target_probability = target_adversary_logits.float().softmax(dim=1).gather(1, target_prediction[:, None])
        target_term = torch.log(torch.clamp(1.0 - target_probability + offset, max=1.0)).mean()
        return margin * source_term + target_term


def domain_confusion_loss(domain_logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy between a domain classifier's prediction and the uniform distribution over domains.

    Tzeng et al., "Simultaneous Deep Transfer Across Domains and Tasks", ICCV 2015, the domain
    confusion loss:
    :math:`-\\frac1B\\sum_i \\frac1D\\sum_d \\log q_{id}`. It is smallest when the classifier cannot
    tell the domains apart.

    Parameters
    ----------
    domain_logits : (B, D) logits over D >= 2 domains, or (B,) or (B, 1) single logits of a binary
        discriminator (read as the two logits ``(z, 0)``).
    """
    with float32_region(domain_logits):
        logits = domain_logits.float()
        if logits.ndim == 2 and logits.shape[1] == 1:  # (B, 1): one binary logit per example
            logits = logits[:, 0]
        if logits.ndim == 1:
            logits = torch.stack([logits, torch.zeros_like(logits)], dim=1)
        return -torch.log_softmax(logits, dim=1).mean()
