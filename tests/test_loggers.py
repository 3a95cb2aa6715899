"""TensorBoard and MLflow loggers, read back with the real libraries."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import cli, write_suite

from adapt import DANN
from adapt.data import moons_shift
from adapt.loggers import MLflowLogger, TensorBoardLogger
from adapt.models import MLP
from adapt.validators import ValidationCallback

pytest.importorskip("tensorboard")
mlflow_tracking = pytest.importorskip("mlflow.tracking")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    """A file store in a temporary folder (MLflow 3 asks for this opt-in; a server or a database is the same API)."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def train(loggers, steps=40, callbacks=None):
    xs, ys, xt, _ = moons_shift()
    model = DANN(MLP(2, (16,)), 2, discriminator_hidden=(8,))
    callbacks = callbacks if callbacks is not None else [ValidationCallback(["im"], xt, every=20)]
    return model.fit((xs, ys), xt, steps=steps, log_every=10, lr=0.05, verbose=False, callbacks=callbacks,
                     loggers=loggers)  # fmt: skip


def test_tensorboard_event_files_hold_losses_lr_throughput_and_validator_scores(tmp_path):
    history = train([TensorBoardLogger(tmp_path / "tb")])
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/classification", "loss/domain", "loss/total", "train/lr", "train/progress",
            "train/examples_per_second", "eval/val_im"} <= tags  # fmt: skip
    logged = events.Scalars("loss/domain")
    assert [e.step for e in logged] == history["step"].tolist() == [10, 20, 30, 40]
    np.testing.assert_allclose([e.value for e in logged], history["domain"], rtol=1e-6)
    assert [e.step for e in events.Scalars("eval/val_im")] == [20, 40]
    assert all(e.value > 0 for e in events.Scalars("train/examples_per_second"))


def test_mlflow_run_holds_the_metrics_and_params_and_ends_finished(mlflow_store):
    logger = MLflowLogger("unit", run_name="dann-moons", params={"method": "dann", "trade_off": 1.0})
    history = train([logger])
    client = mlflow_tracking.MlflowClient(tracking_uri=mlflow_store)
    run = client.get_run(logger.run_id)
    assert run.info.status == "FINISHED" and run.data.params == {"method": "dann", "trade_off": "1.0"}
    total = client.get_metric_history(logger.run_id, "loss/total")
    assert [m.step for m in total] == [10, 20, 30, 40]
    np.testing.assert_allclose([m.value for m in total], history["total"], rtol=1e-6)
    assert {"train/lr", "train/examples_per_second", "eval/val_im"} <= set(run.data.metrics)


def test_a_run_that_fails_is_marked_failed_and_its_logs_are_kept(mlflow_store, tmp_path):
    def broken(step, model):
        raise RuntimeError("callback exploded")

    broken.every = 20
    loggers = [MLflowLogger("unit"), TensorBoardLogger(tmp_path / "tb")]
    with pytest.raises(RuntimeError, match="callback exploded"):
        train(loggers, callbacks=[broken])
    client = mlflow_tracking.MlflowClient(tracking_uri=mlflow_store)
    assert client.get_run(loggers[0].run_id).info.status == "FAILED"
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert [e.step for e in events.Scalars("loss/total")] == [10]  # what was logged before the failure


def test_sweep_logs_every_run_to_tensorboard_and_mlflow(tmp_path, mlflow_store):
    out = tmp_path / "results"
    done = cli("run", "--suite", write_suite(tmp_path, seeds=1, steps=40), "--out", out, "--quiet", "--no-report",
               "--loggers", "tensorboard,mlflow", env={"MLFLOW_ALLOW_FILE_STORE": "true",
                                                      "MLFLOW_TRACKING_URI": mlflow_store})  # fmt: skip
    assert done.returncode == 0, done.stderr
    run_ids = sorted(json.loads(p.read_text())["id"] for p in (out / "runs").glob("*.json"))
    assert sorted(p.name for p in (out / "tensorboard").iterdir()) == run_ids
    client = mlflow_tracking.MlflowClient(tracking_uri=mlflow_store)
    experiment = client.get_experiment_by_name("adapt-bench results")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == run_ids and {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.params["method"] for r in runs} == {"source_only", "dann"}
    bad = cli("run", "--suite", write_suite(tmp_path), "--out", out, "--loggers", "wandb")
    assert bad.returncode == 2 and "unknown logger(s) wandb; choose from tensorboard, mlflow" in bad.stderr
