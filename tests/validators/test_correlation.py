"""Weighted Spearman as Musgrave et al. compute it, against a transcription of their released code.

The transcription follows ``validator_tests/utils/weighted_spearman.py`` of KevinMusgrave/powerful-benchmarker
before its April 2023 change of weights (commit 232551e, lines 7-33) and after it (commit 5212140, lines 7-35,
unchanged up to 009150a), called with ``pow=2`` (``validator_tests/eval_validators.py``, line 83 at 232551e,
line 55 at 5212140), and the ``WeightedCorr`` package it calls (matthijsz/weightedcorr at commit 6471642,
``WeightedCorr.py`` lines 34-51: pandas ``rank()``, weights summed and averaged per rank, weighted Pearson),
on fixed inputs. See the two functions for the lines of each.
"""

import math

import numpy as np
import pandas as pd
import pytest

from adapt.validators import spearman, weighted_spearman
from adapt.validators.correlation import weighted_ranks


def _transcribed_weightedcorr_spearman(x: pd.Series, y: pd.Series, w: pd.Series) -> float:
    """Transcription of ``WeightedCorr(x=x, y=y, w=w)(method="spearman")`` (matthijsz/weightedcorr at commit
    6471642, ``WeightedCorr.py``: ``_wrank`` lines 42-47, ``_wcov`` and ``_pearson`` lines 34-40, ``_spearman``
    lines 49-51), the package's pandas form before v2 (b94086a). powerful-benchmarker installs it unpinned
    (``requirements.txt`` line 13 at 009150a), i.e. the numpy form unchanged since a51e6ff (``WeightedCorr.py``
    lines 35-50 at d37f1f5): the same ranks, and ``_wcov`` without the division by the weight sum, which cancels
    in the ratio."""

    def wrank(v: pd.Series) -> pd.Series:
        frame = pd.DataFrame({"r": v.rank(), "w": w})
        total = frame.groupby("r")["w"].sum()
        below = frame["r"].map(total.cumsum() - total)
        within = frame["r"].map((frame["r"].value_counts() + 1) / 2 * frame.groupby("r")["w"].mean())
        return below + within

    def pearson(a: pd.Series, b: pd.Series) -> float:
        ma, mb = (a * w).sum() / w.sum(), (b * w).sum() / w.sum()

        def cov(p, q, mp, mq):
            return (w * (p - mp) * (q - mq)).sum() / w.sum()

        return cov(a, b, ma, mb) / np.sqrt(cov(a, a, ma, ma) * cov(b, b, mb, mb))

    return float(pearson(wrank(x), wrank(y)))


def _transcribed_musgrave(scores: np.ndarray, acc: np.ndarray, version: str) -> float:
    """Transcription of ``weighted_spearman(validation_scores, target_accuracies, pow=2)``
    (KevinMusgrave/powerful-benchmarker, ``validator_tests/utils/weighted_spearman.py``; ``set_nan_inf_to_min``
    and ``assert_all_finite`` lines 7-18 in both versions). "paper2022": commit 232551e, lines 21-33 (weights =
    dense validator ranks over their maximum, squared); "code2023": commit 5212140, lines 21-35 (weights = the
    larger of the validator's and the accuracy's dense ranks, squared). Their ``scipy.stats.rankdata(...,
    method="dense")`` is written here as pandas ``rank(method="dense")``, which gives the same ranks."""
    scores = scores.copy()
    finite = np.isfinite(scores)
    scores[~finite] = np.min(scores[finite])
    v_ranks = pd.Series(scores).rank(method="dense").to_numpy() / pd.Series(scores).rank(method="dense").max()
    if version == "paper2022":
        weights = v_ranks**2
    else:
        t_ranks = pd.Series(acc).rank(method="dense").to_numpy() / pd.Series(acc).rank(method="dense").max()
        weights = np.maximum(v_ranks, t_ranks) ** 2
    return _transcribed_weightedcorr_spearman(pd.Series(scores), pd.Series(acc), pd.Series(weights))


FIXED_SCORES = np.array([0.31, 0.12, 0.55, 0.55, -0.20, 0.90, 0.47, 0.08, 0.66, 0.12, 0.73, 0.29])
FIXED_ACCURACIES = np.array([0.61, 0.40, 0.70, 0.52, 0.35, 0.58, 0.74, 0.33, 0.69, 0.45, 0.71, 0.52])


@pytest.mark.parametrize("weighting", ["paper2022", "code2023"])
def test_weighted_spearman_matches_the_transcribed_code(weighting):
    expected = _transcribed_musgrave(FIXED_SCORES, FIXED_ACCURACIES, weighting)
    assert weighted_spearman(FIXED_SCORES, FIXED_ACCURACIES, weighting=weighting) == pytest.approx(expected, rel=1e-10)


def test_the_two_weightings_differ_and_neither_is_plain_spearman():
    paper = weighted_spearman(FIXED_SCORES, FIXED_ACCURACIES, weighting="paper2022")
    code = weighted_spearman(FIXED_SCORES, FIXED_ACCURACIES, weighting="code2023")
    plain = spearman(FIXED_SCORES, FIXED_ACCURACIES)
    assert len({round(paper, 6), round(code, 6), round(plain, 6)}) == 3


@pytest.mark.parametrize("weighting", ["paper2022", "code2023"])
def test_nan_and_inf_scores_count_as_the_worst_score(weighting):
    scores = FIXED_SCORES.copy()
    scores[[1, 7]] = [np.nan, -np.inf]
    expected = _transcribed_musgrave(scores, FIXED_ACCURACIES, weighting)
    assert weighted_spearman(scores, FIXED_ACCURACIES, weighting=weighting) == pytest.approx(expected, rel=1e-10)
    worst = FIXED_SCORES.copy()
    worst[[1, 7]] = np.nanmin(np.where(np.isfinite(scores), scores, np.nan))
    assert weighted_spearman(scores, FIXED_ACCURACIES, weighting=weighting) == pytest.approx(
        weighted_spearman(worst, FIXED_ACCURACIES, weighting=weighting)
    )
    assert math.isnan(weighted_spearman(np.full(4, np.nan), np.arange(4.0)))
    with pytest.raises(ValueError, match="finite"):
        weighted_spearman(FIXED_SCORES, np.where(FIXED_ACCURACIES > 0.7, np.nan, FIXED_ACCURACIES))


def test_weighted_ranks_with_unit_weights_are_average_ranks():
    values = np.array([3.0, 1.0, 3.0, 2.0, 5.0])
    np.testing.assert_allclose(weighted_ranks(values, np.ones(5)), [3.5, 1.0, 3.5, 2.0, 5.0])


def test_weighted_spearman_properties():
    x = np.arange(10.0)
    assert weighted_spearman(x, x**2) == pytest.approx(1.0)
    assert weighted_spearman(x, -x) < -0.95  # weighted ranks are not a linear map of each other: not exactly -1
    assert math.isnan(weighted_spearman(np.ones(5), x[:5]))
    # disagreement among the top-scored checkpoints costs more than among the bottom ones
    acc = np.arange(10.0)
    top_swapped, bottom_swapped = acc.copy(), acc.copy()
    top_swapped[[8, 9]] = top_swapped[[9, 8]]
    bottom_swapped[[0, 1]] = bottom_swapped[[1, 0]]
    for weighting in ("paper2022", "code2023"):
        assert weighted_spearman(top_swapped, acc, weighting=weighting) < weighted_spearman(
            bottom_swapped, acc, weighting=weighting
        )
