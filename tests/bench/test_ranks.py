"""Friedman and Nemenyi statistics and average ranks against Demšar (2006)."""

import math

import numpy as np
import pandas as pd
import pytest

from adapt.bench.report.ranks import friedman_nemenyi, friedman_statistics, nemenyi_critical_difference


def test_friedman_and_nemenyi_match_demsars_worked_example():
    """Demšar 2006, Sec. 3.2.2: 4 classifiers on 14 data sets, average ranks 3.143, 2.000, 2.893, 1.964:
    chi2_F = 9.28, F_F = 3.69, and CD = 1.25 at alpha 0.05 (q = 2.569)."""
    chi_square, _, f_f = friedman_statistics(np.array([3.143, 2.000, 2.893, 1.964]), 14)
    assert chi_square == pytest.approx(9.28, abs=0.01)
    assert f_f == pytest.approx(3.69, abs=0.01)
    assert nemenyi_critical_difference(4, 14) == pytest.approx(1.25, abs=0.005)


@pytest.mark.parametrize(("k", "q"), [(2, 1.960), (3, 2.343), (5, 2.728), (6, 2.850), (8, 3.031), (10, 3.164)])
def test_nemenyi_quantiles_match_demsars_table(k, q):
    """Demšar 2006, Table 5(a): critical values q_0.05 of the two-tailed Nemenyi test."""
    assert nemenyi_critical_difference(k, 6) / math.sqrt(k * (k + 1) / 36) == pytest.approx(q, abs=1e-3)


def test_ranks_ties_and_cliques():
    scores = pd.DataFrame({"a": [0.9, 0.8, 0.7], "b": [0.9, 0.6, 0.6], "c": [0.1, 0.2, 0.3]})
    test = friedman_nemenyi(scores)
    assert list(test.average_ranks.index) == ["a", "b", "c"]
    assert test.average_ranks["a"] == pytest.approx((1.5 + 1 + 1) / 3)  # a tie shares the mean rank
    assert test.n_datasets == 3 and test.critical_difference > 1.9  # 3 methods, 3 tasks: nothing significant
    assert test.cliques == [["a", "b", "c"]]
    # 30 tasks that always rank m3 > m2 > m1 > m0: neighbours differ by 1 rank > CD = 0.86, no clique
    far = friedman_nemenyi(pd.DataFrame({f"m{i}": np.full(30, float(i)) for i in range(4)}))
    assert far.critical_difference == pytest.approx(0.856, abs=1e-3) and far.cliques == []
    # ... unless m1 and m2 swap on half of them: their ranks (2.5 each) join one clique
    swapped = pd.DataFrame({f"m{i}": np.full(30, float(i)) for i in range(4)})
    swapped.loc[::2, ["m1", "m2"]] = [2.0, 1.0]
    assert [sorted(c) for c in friedman_nemenyi(swapped).cliques] == [["m1", "m2"]]


def test_ranks_leave_out_methods_missing_a_task_and_say_so(tmp_path):
    from adapt.bench.report.ranks import write_ranks

    summary = pd.DataFrame(
        [{"task": t, "method": m, "mean": v} for t in ("t1", "t2", "t3") for m, v in (("a", 1), ("b", 2), ("c", 3))]
        + [{"task": "t1", "method": "d", "mean": 4.0}]
    )
    _, table, caption = write_ranks(summary, tmp_path)
    assert list(table.index) == ["c", "b", "a"] and "left out, not scored on every task: d" in caption
