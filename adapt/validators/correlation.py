"""How well a validator ranks checkpoints: Spearman and weighted Spearman against target accuracy."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata, spearmanr


def spearman(validator_scores: np.ndarray, accuracies: np.ndarray) -> float:
    """Spearman rank correlation (NaN when either side is constant)."""
    scores, acc = np.asarray(validator_scores, float), np.asarray(accuracies, float)
    if len(scores) < 2 or np.ptp(scores) == 0 or np.ptp(acc) == 0:
        return float("nan")
    return float(spearmanr(scores, acc).statistic)


def weighted_spearman(validator_scores: np.ndarray, accuracies: np.ndarray, power: float = 2.0) -> float:
    """Weighted Spearman correlation of Musgrave et al., ECCV 2022 (Sec. 4).

    Each checkpoint is weighted by its normalized dense rank of validator score to the power
    ``power`` (2 in the paper), so that the checkpoints a validator would pick (its top scores)
    count most; the correlation is the weighted Pearson correlation of the two rank vectors.
    """
    scores, acc = np.asarray(validator_scores, float), np.asarray(accuracies, float)
    if len(scores) < 2 or np.ptp(scores) == 0 or np.ptp(acc) == 0:
        return float("nan")
    dense = rankdata(scores, method="dense")
    weights = (dense / dense.max()) ** power
    rx, ry = rankdata(scores), rankdata(acc)
    mx, my = np.average(rx, weights=weights), np.average(ry, weights=weights)
    cov = np.average((rx - mx) * (ry - my), weights=weights)
    var = np.average((rx - mx) ** 2, weights=weights) * np.average((ry - my) ** 2, weights=weights)
    return float(cov / np.sqrt(var)) if var > 0 else float("nan")
