"""The report's accuracy-estimate errors and the per-run guard, on checkpoints whose answers are known."""

import pandas as pd
import pytest

from adapt.bench.report import estimation_errors, guard_table, guarded_runs, margin_sweep, write_estimation_report


def checkpoint(method, task, seed, step, accuracy, atc_ne, doc):
    return {"id": f"{method}-{task}-{seed}", "method": method, "task": task, "budget": 100, "draw": 0, "seed": seed,
            "step": step, "target_accuracy": accuracy, "atc_ne": atc_ne, "doc": doc}  # fmt: skip


@pytest.fixture
def checkpoints():
    rows = []
    for seed in (0, 1):
        rows += [
            checkpoint("source_only", "a", seed, 50, 0.10, 0.10, 0.10),  # an earlier checkpoint: ignored
            checkpoint("source_only", "a", seed, 100, 0.80, 0.78, 0.90),
            checkpoint("dann", "a", seed, 100, 0.90, 0.88, 0.90),
            checkpoint("source_only", "b", seed, 100, 0.70, 0.72, 0.60),
            # negative transfer on b, seed 0 (60% vs 70%), and the estimate sees it (0.60 < 0.72)
            checkpoint("dann", "b", seed, 100, 0.60 if seed == 0 else 0.75, 0.60 if seed == 0 else 0.74, 0.70),
        ]
    return pd.DataFrame(rows)


def test_errors_are_the_mean_absolute_error_at_the_last_checkpoint(checkpoints):
    errors = estimation_errors(checkpoints)
    assert errors.loc["atc_ne", "a"] == pytest.approx(2.0)  # |0.78 - 0.80| and |0.88 - 0.90|
    assert errors.loc["doc", "b"] == pytest.approx((10 + 10 + 10 + 5) / 4)
    assert errors.index[0] == "atc_ne"  # best first


def test_the_guard_replaces_exactly_the_run_it_estimates_worse(checkpoints):
    runs = guarded_runs(checkpoints, "atc_ne", margin=0.0)
    switched = runs[runs["switched"]]
    assert list(zip(switched["method"], switched["task"], switched["seed"])) == [("dann", "b", 0)]
    assert switched["score"].item() == 0.70  # the SourceOnly partner's accuracy
    table = guard_table(checkpoints, "atc_ne", margin=0.0)
    row = table.loc[("dann", 100)]
    assert row["negative transfer (last)"] == 0.25 and row["negative transfer (guard)"] == 0.0
    assert row["gain (guard)"] == pytest.approx(row["gain (last)"] + 10 / 4)
    assert row["kept SourceOnly"] == "1 / 4"


def test_a_wide_margin_switches_nothing(checkpoints):
    sweep = margin_sweep(checkpoints, [0.0, 0.2], ["atc_ne", "doc"]).set_index(["estimator", "margin", "rule"])
    assert sweep.loc[("atc_ne", 0.2, "guard"), "kept_source_only"] == 0
    assert sweep.loc[("atc_ne", 0.0, "guard"), "kept_source_only"] == 1
    # doc rates every DANN run at or above its SourceOnly partner: it misses the negative transfer
    assert sweep.loc[("doc", 0.0, "guard"), "negative_transfer"] == sweep.loc[("doc", 0.0, "last"), "negative_transfer"]


def test_the_report_files(checkpoints, tmp_path):
    fields = write_estimation_report(checkpoints, tmp_path, figures=True)
    assert {"estimation", "estimation_caption", "estimation_figure"} <= set(fields)
    assert (tmp_path / "estimation.png").stat().st_size > 10_000
    assert write_estimation_report(checkpoints.drop(columns=["atc_ne", "doc"]), tmp_path, figures=False) is None
