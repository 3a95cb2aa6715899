"""Experiment trackers for ``fit(..., loggers=[...])``: TensorBoard and MLflow (optional extras).

Each logger receives, at every logged step, the loss terms (``loss/<term>``, ``loss/total``), the
learning rate, the progress and the throughput (``train/...``) and whatever callbacks returned, such
as validator scores (``eval/val_im``); see :class:`adapt.train.Logger`.

>>> import os, tempfile
>>> from adapt import SourceOnly
>>> from adapt.data import moons_shift
>>> from adapt.models import MLP
>>> xs, ys, xt, _ = moons_shift()
>>> folder = tempfile.mkdtemp()
>>> history = SourceOnly(MLP(2, (8,)), 2).fit((xs, ys), xt, steps=20, log_every=10, verbose=False,
...                                           loggers=[TensorBoardLogger(folder)])
>>> any(name.startswith("events.out.tfevents") for name in os.listdir(folder))
True
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

from ._optional import require


class TensorBoardLogger:
    """Scalars into TensorBoard event files under ``log_dir`` (``tensorboard --logdir <log_dir>``)."""

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        self.log_dir = os.fspath(log_dir)
        self._writer: Any = None

    def log(self, scalars: dict[str, float], step: int) -> None:
        if self._writer is None:  # opened on the first row: constructing the logger does no work
            require("tensorboard", "loggers", "TensorBoardLogger")
            summary = require("torch.utils.tensorboard", "loggers", "TensorBoardLogger")
            self._writer = summary.SummaryWriter(log_dir=self.log_dir)
        for name, value in scalars.items():
            if math.isfinite(value):
                self._writer.add_scalar(name, value, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class MLflowLogger:
    """Metrics into one MLflow run of ``experiment`` at ``tracking_uri`` (None: MLflow's default, the
    ``MLFLOW_TRACKING_URI`` environment variable). ``params`` are logged once as the run's parameters
    (the method's settings, for example). The run ends when training ends, marked failed after an error.
    """

    def __init__(
        self, experiment: str = "adapt", run_name: str | None = None, tracking_uri: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        self.experiment, self.run_name, self.tracking_uri, self.params = experiment, run_name, tracking_uri, params
        self._client: Any = None
        self.run_id: str | None = None
        self._finished = False

    def _start(self) -> None:
        tracking = require("mlflow.tracking", "loggers", "MLflowLogger")
        self._client = tracking.MlflowClient(tracking_uri=self.tracking_uri)
        found = self._client.get_experiment_by_name(self.experiment)
        experiment_id = found.experiment_id if found is not None else self._client.create_experiment(self.experiment)
        self.run_id = self._client.create_run(experiment_id, run_name=self.run_name).info.run_id
        for key, value in (self.params or {}).items():
            self._client.log_param(self.run_id, key, str(value)[:6000])

    def log(self, scalars: dict[str, float], step: int) -> None:
        if self._client is None:
            self._start()
        entities = require("mlflow.entities", "loggers", "MLflowLogger")
        stamp = int(1000 * time.time())
        metrics = [entities.Metric(k, v, stamp, step) for k, v in scalars.items() if math.isfinite(v)]
        self._client.log_batch(self.run_id, metrics=metrics)
        self._finished = math.isclose(scalars.get("train/progress", 0.0), 1.0)

    def close(self) -> None:
        if self._client is not None and self.run_id is not None:
            self._client.set_terminated(self.run_id, status="FINISHED" if self._finished else "FAILED")
            self._client = None


#: The loggers ``adapt-bench run --loggers`` knows by name.
LOGGERS = {"tensorboard": TensorBoardLogger, "mlflow": MLflowLogger}
