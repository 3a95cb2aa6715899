"""Pseudo-labels from a memory of target examples: neighbourhood aggregation (ATDOC-NA).

Liang, Hu & Feng, "Domain Adaptation with Auxiliary Target Domain-Oriented Classifier", CVPR 2021
(arXiv 2007.04171), its neighborhood aggregation classifier: each target example is labeled by the mean of the
stored predictions of its K nearest stored target examples, and the loss weighs each example by
the confidence of that mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._utils import float32_region


def neighborhood_predictions(
    features: torch.Tensor,
    memory_features: torch.Tensor,
    memory_predictions: torch.Tensor,
    k: int,
    exclude: torch.Tensor | None = None,
) -> torch.Tensor:
    """The mean stored prediction of each example's ``k`` nearest memory entries (cosine similarity).

    ATDOC's auxiliary classifier, :math:`\\hat q_i = \\frac1K \\sum_{j \\in \\mathcal N_K(i)} \\tilde q_j`, where the
    neighbours :math:`\\mathcal N_K(i)` are the memory rows most similar to :math:`f_i` (inner product
    of L2-normalized features; ``memory_features`` are stored normalized).

    Parameters
    ----------
    features : Tensor (B, D), the batch's features (normalized here).
    memory_features : Tensor (N, D), L2-normalized features of the N stored examples.
    memory_predictions : Tensor (N, C), their stored (sharpened) predictions.
    k : number of neighbours, at most N - 1 when ``exclude`` is given.
    exclude : LongTensor (B,), the memory row of each batch example itself, never its own neighbour.

    Returns
    -------
    Tensor (B, C): :math:`\\hat q`, no gradient.
    """
    with torch.no_grad():
        return memory_predictions.float()[neighbor_indices(features, memory_features, k, exclude)].mean(dim=1)


def neighbor_indices(
    features: torch.Tensor, memory_features: torch.Tensor, k: int, exclude: torch.Tensor | None = None
) -> torch.Tensor:
    """The memory rows of each example's ``k`` nearest neighbours by cosine similarity, (B, k), no gradient.

    Parameters
    ----------
    features : Tensor (B, D), normalized here.
    memory_features : Tensor (N, D), L2-normalized.
    k : number of neighbours, at most N - 1 when ``exclude`` is given.
    exclude : LongTensor (B,), each example's own memory row, never its own neighbour.
    """
    with torch.no_grad(), float32_region(features):
        similarity = F.normalize(features.detach().float(), dim=1) @ memory_features.float().t()
        if exclude is not None:
            rows = torch.arange(similarity.shape[0], device=similarity.device)
            similarity[rows, exclude] = -torch.inf
        return similarity.topk(k, dim=1).indices


def sharpened_predictions(logits: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """Predictions stored in ATDOC's memory: :math:`p_{ic}^{1/T} / \\sum_{i'} p_{i'c}^{1/T}`.

    As ATDOC stores them (T = 0.5: squared softmax probabilities), normalized over the batch for each
    class, which counteracts classes the model over-predicts (as pytorch-adapt's
    ``NeighborhoodAggregation``; tested against it).

    Parameters
    ----------
    logits : Tensor (B, C).
    temperature : T > 0.
    """
    with torch.no_grad(), float32_region(logits):
        powered = logits.float().softmax(dim=1) ** (1.0 / temperature)
        return powered / powered.sum(dim=0, keepdim=True)


def confidence_weighted_cross_entropy(logits: torch.Tensor, neighbour_predictions: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with the neighbourhood's pseudo-labels, weighted by their confidence.

    ATDOC's pseudo-label loss, :math:`\\sum_i w_i\\, \\mathrm{CE}(p_i, \\arg\\max_c \\hat q_{ic}) / \\sum_i w_i` with
    :math:`w_i = \\max_c \\hat q_{ic}`, normalized by the summed weights (pytorch-adapt's hook averages
    ``w_i CE_i`` over the batch instead, a scale that shrinks with the confidence).

    Parameters
    ----------
    logits : Tensor (B, C), the model's target logits (the gradient flows through them).
    neighbour_predictions : Tensor (B, C), :func:`neighborhood_predictions`.
    """
    with float32_region(logits):
        weights, pseudo_labels = neighbour_predictions.detach().float().max(dim=1)
        per_example = F.cross_entropy(logits.float(), pseudo_labels, reduction="none")
        return (weights * per_example).sum() / weights.sum().clamp_min(torch.finfo(torch.float32).tiny)
