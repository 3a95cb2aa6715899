"""Comparing many methods over many tasks: average ranks, the Friedman test, the Nemenyi critical
difference and its diagram (Demšar, "Statistical Comparisons of Classifiers over Multiple Data Sets",
JMLR 7, 2006, Sec. 3.2.2)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .common import pyplot, save_figure
from .figures import TARGET_LABELS_NOTE
from .tables import to_markdown


@dataclass
class RankTest:
    """The outcome of :func:`friedman_nemenyi`.

    ``average_ranks`` is sorted best first (rank 1 = highest score). ``cliques`` are the maximal groups
    of methods, consecutive in that order, whose average ranks differ by less than the critical
    difference: the Nemenyi test cannot tell them apart.
    """

    average_ranks: pd.Series
    n_datasets: int
    chi_square: float
    p_value: float
    iman_davenport: float
    critical_difference: float
    alpha: float
    cliques: list[list[str]]


def nemenyi_critical_difference(n_methods: int, n_datasets: int, alpha: float = 0.05) -> float:
    """:math:`CD = q_\\alpha \\sqrt{k(k+1)/(6N)}`, with :math:`q_\\alpha` the studentized range quantile
    over :math:`\\sqrt 2` (Demšar 2006, Eq. after Table 5; q = 2.569 for k = 4 at alpha 0.05)."""
    if n_methods < 2 or n_datasets < 1:
        raise ValueError(f"need at least 2 methods and 1 data set, got {n_methods} and {n_datasets}")
    q = stats.studentized_range.ppf(1 - alpha, n_methods, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(n_methods * (n_methods + 1) / (6 * n_datasets)))


def friedman_statistics(average_ranks: np.ndarray, n_datasets: int) -> tuple[float, float, float]:
    """Friedman's :math:`\\chi^2_F`, its p-value, and Iman and Davenport's :math:`F_F` from average ranks.

    :math:`\\chi^2_F = \\frac{12N}{k(k+1)}\\big[\\sum_j R_j^2 - \\frac{k(k+1)^2}{4}\\big]`,
    :math:`F_F = \\frac{(N-1)\\chi^2_F}{N(k-1)-\\chi^2_F}` (Demšar 2006, Sec. 3.2.2).
    """
    k, n = len(average_ranks), n_datasets
    chi_square = 12 * n / (k * (k + 1)) * (float(np.sum(np.square(average_ranks))) - k * (k + 1) ** 2 / 4)
    p_value = float(stats.chi2.sf(chi_square, k - 1))
    denominator = n * (k - 1) - chi_square
    iman_davenport = (n - 1) * chi_square / denominator if denominator > 0 else math.inf
    return chi_square, p_value, iman_davenport


def _cliques(average_ranks: pd.Series, critical_difference: float) -> list[list[str]]:
    names, ranks = list(average_ranks.index), average_ranks.to_numpy()
    spans = []
    for start in range(len(ranks)):
        end = start
        while end + 1 < len(ranks) and ranks[end + 1] - ranks[start] < critical_difference:
            end += 1
        if end > start and not (spans and spans[-1][1] >= end):
            spans.append((start, end))
    return [names[a : b + 1] for a, b in spans]


def friedman_nemenyi(scores: pd.DataFrame, alpha: float = 0.05) -> RankTest:
    """Rank the methods on every data set and test the differences.

    Parameters
    ----------
    scores : DataFrame, one row per data set (task) and one column per method; higher is better.
        Rows with a missing score are dropped (every method must be scored on the same data sets).
    alpha : significance level of the Nemenyi critical difference.
    """
    complete = scores.dropna()
    if complete.shape[0] < 1 or complete.shape[1] < 2:
        raise ValueError(f"need at least 2 methods scored on a common data set, got a {complete.shape} table")
    ranks = complete.rank(axis=1, ascending=False, method="average")  # ties share the mean rank
    average = ranks.mean(axis=0).sort_values()
    n = complete.shape[0]
    chi_square, p_value, f_f = friedman_statistics(average.to_numpy(), n)
    cd = nemenyi_critical_difference(len(average), n, alpha)
    return RankTest(average, n, chi_square, p_value, f_f, cd, alpha, _cliques(average, cd))


def critical_difference_figure(test: RankTest, out: Path) -> Path:
    """``critical_difference.png``: average ranks on an axis (best left), the critical difference
    above it, and a bar under every group of methods the Nemenyi test cannot tell apart."""

    plt = pyplot()
    ranks = test.average_ranks
    k = len(ranks)
    half = (k + 1) // 2
    step = 0.32
    fig_height = 1.2 + 0.3 * half + 0.12 * len(test.cliques)
    fig, ax = plt.subplots(figsize=(9, fig_height))
    ax.set_xlim(0.4 - 0.22 * k, k + 0.6 + 0.22 * k)
    ax.set_ylim(-(half + 0.8) * step - 0.12 * len(test.cliques), 0.75)
    ax.axis("off")
    ax.hlines(0, 1, k, color="black", linewidth=1.2)
    for r in range(1, k + 1):
        ax.vlines(r, 0, 0.08, color="black", linewidth=1)
        ax.text(r, 0.13, str(r), ha="center", va="bottom", fontsize=9)
    cd_end = min(k, 1 + test.critical_difference)
    ax.hlines(0.55, 1, cd_end, color="#b2182b", linewidth=2)
    ax.vlines([1, cd_end], 0.5, 0.6, color="#b2182b", linewidth=2)
    ax.text((1 + cd_end) / 2, 0.62, f"CD = {test.critical_difference:.2f}", ha="center", va="bottom",
            fontsize=9, color="#b2182b")  # fmt: skip
    _label_methods(ax, ranks, half, step, k, top=-0.1 - 0.12 * len(test.cliques))
    for i, group in enumerate(test.cliques):
        y = -0.12 - 0.12 * i
        ax.hlines(y, ranks[group[0]] - 0.05, ranks[group[-1]] + 0.05, color="#4d4d4d", linewidth=4, alpha=0.8)
    ax.set_title(
        f"Average rank over {test.n_datasets} tasks (1 = best); methods joined by a bar are not significantly "
        f"different\n(Friedman p = {test.p_value:.2g}, Nemenyi alpha = {test.alpha}; {TARGET_LABELS_NOTE})",
        fontsize=9,
    )
    return save_figure(fig, out / "critical_difference.png")


def _label_methods(ax: Any, ranks: pd.Series, half: int, step: float, k: int, top: float) -> None:
    """The best half labeled on the left, the rest on the right, each joined to its rank by an elbow."""
    for i, (name, rank) in enumerate(ranks.items()):
        left = i < half
        row = i if left else k - 1 - i
        y = top - (row + 1) * step
        x_text = 0.9 - 0.05 * k if left else k + 0.1 + 0.05 * k
        ax.plot([rank, rank, x_text], [0, y, y], color="#333333", linewidth=0.9)
        ax.text(x_text + (-0.08 if left else 0.08), y, f"{name}  {rank:.2f}" if left else f"{rank:.2f}  {name}",
                ha="right" if left else "left", va="center", fontsize=9)  # fmt: skip


def write_ranks(summary: pd.DataFrame, out: Path) -> tuple[RankTest, pd.DataFrame, str] | None:
    """Write ``ranks.csv`` and ``ranks.md`` (average ranks, Friedman and Nemenyi) from the headline
    summary, when at least 3 methods ran on at least 2 common tasks; None otherwise."""

    scores = summary.pivot(index="task", columns="method", values="mean")
    # the test needs every method on every task: drop the methods that miss a task, and say so
    missing = sorted(scores.columns[scores.isna().any()])
    scores = scores.drop(columns=missing)
    if scores.shape[1] < 3 or scores.shape[0] < 2:
        return None
    test = friedman_nemenyi(scores)
    table = pd.DataFrame({"average rank": test.average_ranks.round(2)})
    table.index.name = "method"
    table.to_csv(out / "ranks.csv")
    caption = (
        f"Average rank over {test.n_datasets} tasks (1 = best; each task ranked by the mean accuracy over "
        f"seeds). Friedman chi2 = {test.chi_square:.2f}, p = {test.p_value:.2g}; Iman-Davenport F = "
        f"{test.iman_davenport:.2f}. Nemenyi critical difference at alpha {test.alpha}: {test.critical_difference:.2f} "
        "(methods whose average ranks differ by less are not significantly different; Demšar 2006)"
        + (f"; left out, not scored on every task: {', '.join(missing)}" if missing else "")
    )
    (out / "ranks.md").write_text(to_markdown(table, caption))
    return test, table, caption
