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


def _record(run_id, seed, predictions, accuracy, data_seed=0, steps=(50, 100)):
    from adapt.bench.scoring import encode_predictions

    return {"id": run_id, "status": "ok", "target_predictions": encode_predictions(predictions),
            "config": {"method": "dann", "benchmark": "moons", "source": "source", "target": "rotated",
                       "data": {"seed": data_seed}, "budget": 100, "seed": seed},
            "curve": [{"step": s, "target_accuracy": accuracy, "val_doc": 0.5} for s in steps]}  # fmt: skip


def test_seed_agreement_pairs_runs_that_differ_only_in_their_seed():
    from adapt.bench.report import checkpoints_frame
    from adapt.bench.scoring import decode_predictions, encode_predictions

    assert list(decode_predictions(encode_predictions([3, 0, 344, 9]))) == [3, 0, 344, 9]
    records = [_record("a", 0, [0, 1, 1, 0], 0.5), _record("b", 1, [0, 1, 0, 0], 0.75),
               _record("c", 2, [1, 1, 0, 0], 0.5),
               _record("d", 0, [1, 1, 1, 1], 0.5, data_seed=7)]  # other target examples: no partner  # fmt: skip
    frame = checkpoints_frame(records)
    last = frame[frame["step"] == 100].set_index("id")["agreement"]
    assert last["a"] == 0.75 and last["b"] == 0.75 and last["c"] == 0.5  # a~b, b~c, c~a (cyclic)
    assert pd.isna(last["d"]) and frame[frame["step"] == 50]["agreement"].isna().all()
    errors = estimation_errors(frame)
    assert errors.loc["agreement", "mean"] == pytest.approx(100 * (0.25 + 0.0 + 0.0) / 3)


def test_a_sweep_records_predictions_and_reports_the_agreement(tmp_path):
    """Through the real entry point: each run records its final model's target predictions, and the report's
    estimation table has the two seeds' agreement beside the estimators."""
    import json

    from helpers import cli, write_suite

    from adapt.bench.scoring import decode_predictions
    from adapt.data import dataset_labels, task

    suite = write_suite(tmp_path, seeds=2)
    suite.write_text(suite.read_text().replace("eval_every = 20", 'eval_every = 20\nvalidators = ["doc"]\n'
                                               "source_holdout = 0.2"))  # fmt: skip
    out = tmp_path / "results"
    result = cli("run", "--suite", suite, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    records = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
    labels = dataset_labels(task("moons", "source", "rotated", source_holdout=0.2).target_test)
    for r in records:
        predictions = decode_predictions(r["target_predictions"])
        assert (predictions == labels).mean() == pytest.approx(r["accuracy"])
    estimation = pd.read_csv(out / "report" / "estimation.csv", index_col=0)
    assert {"doc", "agreement"} <= set(estimation.index)
