"""The three losses of domain-symmetric networks (SymNets, Zhang et al., CVPR 2019).

The network has two classifiers, :math:`C^s` and :math:`C^t`, over the same C classes; ``p`` below
is the softmax over their 2C concatenated logits, :math:`p = \\mathrm{softmax}([C^s(f), C^t(f)])`,
whose first half speaks for the source and second half for the target.
"""

from __future__ import annotations

import torch

from ._utils import float32_region


def _check_pair(source_classifier_logits: torch.Tensor, target_classifier_logits: torch.Tensor) -> None:
    if source_classifier_logits.shape != target_classifier_logits.shape:
        shapes = f"{tuple(source_classifier_logits.shape)} and {tuple(target_classifier_logits.shape)}"
        raise ValueError(f"the two classifiers' logits must have the same shape, got {shapes}")


def _joint_probabilities(
    source_classifier_logits: torch.Tensor, target_classifier_logits: torch.Tensor
) -> torch.Tensor:
    _check_pair(source_classifier_logits, target_classifier_logits)
    return torch.cat([source_classifier_logits.float(), target_classifier_logits.float()], dim=1).softmax(dim=1)


def symmetric_domain_loss(
    source_classifier_logits: torch.Tensor, target_classifier_logits: torch.Tensor, half: int
) -> torch.Tensor:
    """:math:`-\\frac1B\\sum_i \\log \\sum_{k \\in \\text{half}} p_{ik}`: the mass of the joint softmax on one
    half. ``half=0`` (the source classifier's) for source inputs and ``half=1`` for target inputs is the
    classifiers' domain discrimination loss; the average of both halves on target inputs is the
    features' domain-level confusion loss (Zhang et al. 2019)."""
    if half not in (0, 1):
        raise ValueError(f"half must be 0 (source classifier) or 1 (target classifier), got {half!r}")
    with float32_region(source_classifier_logits):
        p = _joint_probabilities(source_classifier_logits, target_classifier_logits)
        c = source_classifier_logits.shape[1]
        mass = p[:, :c].sum(dim=1) if half == 0 else p[:, c:].sum(dim=1)
        return -torch.log(mass.clamp_min(torch.finfo(mass.dtype).tiny)).mean()


def symmetric_category_confusion(
    source_classifier_logits: torch.Tensor, target_classifier_logits: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """:math:`-\\frac1B\\sum_i \\big(\\tfrac12\\log p_{i,y_i} + \\tfrac12\\log p_{i,y_i+C}\\big)` on labeled
    source inputs: the features make the two classifiers agree on the class, whatever the domain
    (Zhang et al. 2019, the category-level confusion loss)."""
    _check_pair(source_classifier_logits, target_classifier_logits)
    with float32_region(source_classifier_logits):
        log_p = torch.log_softmax(
            torch.cat([source_classifier_logits.float(), target_classifier_logits.float()], dim=1), dim=1
        )
        c = source_classifier_logits.shape[1]
        rows = torch.arange(len(labels), device=labels.device)
        return -(0.5 * log_p[rows, labels] + 0.5 * log_p[rows, labels + c]).mean()


def symmetric_entropy(source_classifier_logits: torch.Tensor, target_classifier_logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the class distribution :math:`q_k = p_k + p_{k+C}` (the two halves folded together),
    averaged over the batch: the SymNets entropy loss on target inputs."""
    with float32_region(source_classifier_logits):
        p = _joint_probabilities(source_classifier_logits, target_classifier_logits)
        c = source_classifier_logits.shape[1]
        q = p[:, :c] + p[:, c:]
        return -(q * torch.log(q.clamp_min(torch.finfo(q.dtype).tiny))).sum(dim=1).mean()
