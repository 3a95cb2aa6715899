"""How a benchmark run is scored on its target: accuracies, the selected checkpoint, the monitoring curve.

Target labels only ever score here; what trains or selects sees target inputs alone (validators get
the evaluation view of the unlabeled target and the held-out source split).
"""

from __future__ import annotations

import base64
import zlib
from typing import Any

import numpy as np
import torch

from ..data import Task, dataset_labels
from ..estimate import source_calibration as calibration_of
from ..validators import VALIDATORS, ValidationCallback
from ..validators.scores import prediction_accuracy


def accuracies(model: Any, dataset: Any, classes: list[str]) -> tuple[float, dict[str, float]]:
    """Accuracy on a labeled dataset, and per class (by name) for the classes present."""
    return prediction_accuracy(model.predict(dataset), torch.as_tensor(dataset_labels(dataset)), classes)


def encode_predictions(predictions: Any) -> str:
    """Class predictions as a short string for a run record (zlib-compressed uint16, base64): what two runs'
    agreement is computed from (:func:`adapt.estimate.agreement_rate`) after both finished."""
    return base64.b64encode(zlib.compress(np.asarray(predictions, dtype=np.uint16).tobytes())).decode("ascii")


def decode_predictions(text: str) -> np.ndarray:
    """:func:`encode_predictions` undone: the class predictions (int64)."""
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=np.uint16).astype(np.int64)


class TargetAccuracyCurve:
    """Monitoring only: target test accuracy every ``every`` steps, for the learning-curve plot.

    It is never used to select checkpoints or hyperparameters (that would be an oracle).
    """

    def __init__(self, every: int, dataset: Any) -> None:
        self.every = every
        self.dataset = dataset

    def __call__(self, step: int, model: Any) -> dict[str, float]:
        return {"target_accuracy": accuracies(model, self.dataset, [])[0]}


def callbacks_for(
    validators: tuple[str, ...],
    select_by: str | None,
    eval_every: int,
    task: Task,
    source_calibration: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[list[Any], ValidationCallback | None]:
    """The validators (if the suite has any) and the monitoring-only target accuracy curve.
    ``source_calibration``: a source-free run's calibration (:func:`source_calibration`), which replaces
    the held-out source split."""
    callbacks: list[Any] = []
    validation = None
    if validators:
        # Validators see target *inputs* only, with evaluation transforms (target_eval), and the
        # held-out source split (or, source-free, the source model's outputs on it).
        source = (task.source_val, task.source_train_eval) if source_calibration is None else (None, None)
        validation = ValidationCallback(list(validators), task.target_eval, *source, eval_every, select_by,
                                        source_calibration=source_calibration)  # fmt: skip
        callbacks.append(validation)
    if eval_every:
        callbacks.append(TargetAccuracyCurve(eval_every, task.target_test))
    return callbacks, validation


def source_calibration(model: Any, task: Task, validators: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor] | None:
    """A source-free run's calibration: the source model's logits on the held-out source split and its
    labels, computed before adaptation, as the model's provider would (None when no validator needs it).
    The adapted model never sees them; the accuracy estimators calibrate on them."""
    if not any(VALIDATORS[name].needs_source_val for name in validators) or task.source_val is None:
        return None
    return calibration_of(model, task.source_val)


def target_scores(
    model: Any, task: Task, select_by: str | None, validation: ValidationCallback | None
) -> dict[str, Any]:
    """The record's accuracy fields: last checkpoint, per class, transductive/held-out, selected; and the last
    model's predictions on the target test set (``target_predictions``, :func:`encode_predictions`), from which
    the report computes two seeds' agreement, a label-free accuracy estimate."""
    predictions = model.predict(task.target_test)
    accuracy, per_class = prediction_accuracy(predictions, torch.as_tensor(dataset_labels(task.target_test)),
                                              task.classes)  # fmt: skip
    scores: dict[str, Any] = {
        "protocol": task.protocol,
        "accuracy": accuracy,
        "mean_class_accuracy": float(np.mean(list(per_class.values()))),
        "per_class_accuracy": per_class,
        "target_predictions": encode_predictions(predictions),
    }
    if task.protocol == "inductive":
        scores["accuracy_heldout"] = accuracy
        if task.target_train_scoring is not None:
            scores["accuracy_transductive"] = accuracies(model, task.target_train_scoring, task.classes)[0]
    else:
        scores["accuracy_transductive"] = accuracy
    scores["selected"] = None
    if select_by and validation is not None:
        # the checkpoint kept by the chosen validator (its target accuracy is scored, not used)
        step = validation.restore_best(model)
        selected_accuracy = accuracies(model, task.target_test, task.classes)[0]
        scores["selected"] = {"validator": select_by, "step": step, "accuracy": selected_accuracy}
    return scores
