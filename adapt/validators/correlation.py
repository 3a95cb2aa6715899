"""How well a validator ranks checkpoints: Spearman and weighted Spearman against target accuracy.

Both follow Musgrave et al., "Three New Validators and a Large-Scale Benchmark Ranking for
Unsupervised Domain Adaptation" (2022) and their released code (``powerful-benchmarker``,
``validator_tests/utils/weighted_spearman.py``): non-finite validator scores (a validator that
failed on a checkpoint) count as the worst finite score, never silently dropped.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.stats import rankdata, spearmanr

#: 'paper2022': weights from the validator's ranks only (the paper and the code until April 2023);
#: 'code2023': from the larger of the validator's and the accuracy's rank (the code since April 2023).
Weighting = Literal["paper2022", "code2023"]


def _finite_scores(validator_scores: np.ndarray, accuracies: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    scores, acc = np.asarray(validator_scores, float).copy(), np.asarray(accuracies, float)
    if scores.shape != acc.shape or scores.ndim != 1:
        raise ValueError(f"scores and accuracies must be 1-D and of one length, got {scores.shape} and {acc.shape}")
    if not np.isfinite(acc).all():
        raise ValueError("target accuracies must all be finite")
    finite = np.isfinite(scores)
    if not finite.any():
        return None
    scores[~finite] = scores[finite].min()  # a failed score is the worst score, as in Musgrave et al.'s code
    return scores, acc


def spearman(validator_scores: np.ndarray, accuracies: np.ndarray) -> float:
    """Spearman rank correlation (NaN when either side is constant or there is no finite score)."""
    pair = _finite_scores(validator_scores, accuracies)
    if pair is None:
        return float("nan")
    scores, acc = pair
    if len(scores) < 2 or np.ptp(scores) == 0 or np.ptp(acc) == 0:
        return float("nan")
    return float(spearmanr(scores, acc).statistic)


def weighted_ranks(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Ranks where each example counts with its weight (the ``WeightedCorr`` package's spearman).

    An example's rank is the total weight of the strictly smaller values plus
    ``(t + 1) / 2`` times the mean weight of its group of ``t`` tied values; with unit weights these
    are the usual average ranks.
    """
    values, weights = np.asarray(values, float), np.asarray(weights, float)
    ranks = rankdata(values)
    groups, inverse, counts = np.unique(ranks, return_inverse=True, return_counts=True)
    group_weight = np.bincount(inverse, weights=weights, minlength=len(groups))
    below = np.cumsum(group_weight) - group_weight
    return below[inverse] + ((counts + 1) / 2 * group_weight / counts)[inverse]


def weighted_pearson(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> float:
    """Pearson correlation with per-example weights (NaN when a side has no weighted variance)."""
    w = np.asarray(weights, float)
    mx, my = np.average(x, weights=w), np.average(y, weights=w)
    cov = np.average((x - mx) * (y - my), weights=w)
    var = np.average((x - mx) ** 2, weights=w) * np.average((y - my) ** 2, weights=w)
    return float(cov / np.sqrt(var)) if var > 0 else float("nan")


def weighted_spearman(
    validator_scores: np.ndarray, accuracies: np.ndarray, power: float = 2.0, weighting: Weighting = "code2023"
) -> float:
    """Weighted Spearman correlation of Musgrave et al. (2022), as in their released code.

    Each checkpoint gets a weight from the normalized dense ranks (``rank / max rank``, in (0, 1])
    raised to ``power`` (2 in the paper), so that the checkpoints a validator would pick count most:

    * ``weighting="paper2022"``: the validator score's rank;
    * ``weighting="code2023"``: the larger of the score's and the accuracy's rank (their code
      since April 2023: the best checkpoints also count when the validator ranks them low).

    The correlation is the weighted Pearson correlation of the weighted ranks
    (:func:`weighted_ranks`) of scores and accuracies. Non-finite scores become the lowest finite
    score; accuracies must be finite. NaN when a side is constant.
    """
    if weighting not in ("paper2022", "code2023"):
        raise ValueError(f"weighting must be 'paper2022' or 'code2023', got {weighting!r}")
    pair = _finite_scores(validator_scores, accuracies)
    if pair is None or len(pair[0]) < 2:
        return float("nan")
    scores, acc = pair
    score_rank = rankdata(scores, method="dense")
    score_rank = score_rank / score_rank.max()
    if weighting == "paper2022":
        weights = score_rank**power
    else:
        acc_rank = rankdata(acc, method="dense")
        weights = np.maximum(score_rank, acc_rank / acc_rank.max()) ** power
    return weighted_pearson(weighted_ranks(scores, weights), weighted_ranks(acc, weights), weights)
