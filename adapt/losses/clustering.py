"""Self-supervised pseudo-labels by clustering the target features (SHOT, Liang et al., ICML 2020)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cosine_cluster_labels(
    features: torch.Tensor, logits: torch.Tensor, rounds: int = 1, min_count: int = 0
) -> torch.Tensor:
    """SHOT's pseudo-labels: nearest class centroid in cosine distance, centroids from the predictions.

    Liang, Hu & Feng, "Do We Really Need to Access the Source Data? Source Hypothesis Transfer for
    Unsupervised Domain Adaptation", ICML 2020, Eqs. 4-6. Features get a constant 1 appended and are
    L2-normalized (as in the authors' ``obtain_label``). The first centroids weigh every example by its
    softmax probability, :math:`c_k = \\sum_i p_{ik} f_i / \\sum_i p_{ik}`; each example takes the
    label of the nearest centroid; then ``rounds`` times the centroids are recomputed from those hard
    labels and the examples relabeled. Only classes predicted (argmax) for more than ``min_count``
    examples get a centroid.

    Parameters
    ----------
    features : Tensor (N, D), the whole target's features.
    logits : Tensor (N, C), the classifier's logits for them.
    rounds : hard-label refinements after the soft start (1, as SHOT).
    min_count : classes predicted this many times or fewer have no centroid (0, as SHOT).

    Returns
    -------
    LongTensor (N,): a label in [0, C) for every example.
    """
    with torch.no_grad():
        x = torch.cat([features.float(), torch.ones(len(features), 1, device=features.device)], dim=1)
        x = F.normalize(x, dim=1)
        probabilities = logits.float().softmax(dim=1)
        num_classes = probabilities.shape[1]
        counts = torch.bincount(probabilities.argmax(dim=1), minlength=num_classes)
        kept = (counts > min_count).nonzero().flatten()
        weights = probabilities
        for _ in range(rounds + 1):
            centroids = weights.t() @ x / (weights.sum(dim=0)[:, None] + 1e-8)
            similarity = x @ F.normalize(centroids[kept], dim=1).t()  # cosine: argmax similarity = argmin distance
            labels = kept[similarity.argmax(dim=1)]
            weights = F.one_hot(labels, num_classes).float()
        return labels
