"""Validators: score a model from what a real user has (labeled source, unlabeled target).

A validator never sees target labels: it is given target *inputs* only. Each one is a small class
with ``score(outputs)``; :func:`collect_outputs` runs the model once (batched, on its device) and
every validator reads the same outputs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..data import dataset_labels, subset
from ..registry import Registry
from . import scores


@dataclass
class ModelOutputs:
    """What the validators read: target outputs, and optionally labeled source-validation outputs."""

    target_logits: torch.Tensor
    target_features: torch.Tensor
    source_val_logits: torch.Tensor | None = None
    source_val_features: torch.Tensor | None = None
    source_val_labels: torch.Tensor | None = None
    source_train_features: torch.Tensor | None = None


def _labeled(data: Any) -> tuple[Any, torch.Tensor]:
    """(inputs, labels) of a labeled source split given as (x, y) or a Dataset yielding (x, y)."""

    if isinstance(data, (tuple, list)) and len(data) == 2:
        return data[0], torch.as_tensor(np.asarray(data[1])).long()
    return data, torch.as_tensor(dataset_labels(data)).long()


def _sample(data: Any, max_examples: int, seed: int) -> Any:
    n = len(data[0]) if isinstance(data, (tuple, list)) else len(data)
    if n <= max_examples:
        return data
    idx = np.sort(np.random.default_rng(seed).choice(n, max_examples, replace=False))
    if isinstance(data, (tuple, list)):
        return tuple(torch.as_tensor(np.asarray(d))[idx] for d in data)
    assert isinstance(data, Dataset)
    return subset(data, idx)


def collect_outputs(
    model: Any,
    target: Any,
    source_val: Any = None,
    source_train: Any = None,
    max_examples: int = 4000,
    seed: int = 0,
) -> ModelOutputs:
    """Run the model once over the data the validators need (at most ``max_examples`` per split).

    ``target`` gives inputs only (a tensor, or a Dataset whose labels, if any, are dropped).
    """

    # predictions come back as numpy for numpy inputs: validators compute on tensors (shared memory)
    def logits(x: Any) -> torch.Tensor:
        return torch.as_tensor(model.predict_logits(x))

    def features(x: Any) -> torch.Tensor:
        return torch.as_tensor(model.features(x))

    target = _sample(target, max_examples, seed)
    out = ModelOutputs(logits(target), features(target))
    if source_val is not None:
        x, labels = _labeled(_sample(source_val, max_examples, seed))
        out.source_val_logits, out.source_val_features, out.source_val_labels = logits(x), features(x), labels
    if source_train is not None:
        x = _sample(source_train, max_examples, seed)
        out.source_train_features = features(x[0] if isinstance(x, (tuple, list)) else x)
    return out


class Validator:
    """Base class: ``score(outputs) -> float``, higher is better."""

    name: ClassVar[str] = ""
    needs_source_val: ClassVar[bool] = False
    needs_source_train: ClassVar[bool] = False
    #: Moves when the validator's scores change (a benchmark run that scores it reruns).
    revision: ClassVar[int] = 1

    def score(self, outputs: ModelOutputs) -> float:
        raise NotImplementedError

    def check(self, outputs: ModelOutputs) -> None:
        if self.needs_source_val and outputs.source_val_logits is None:
            raise ValueError(
                f"validator '{self.name}' needs a labeled source validation split (source_val=...); "
                f"hold some source data out (suite key source_holdout, or task(..., source_holdout=0.1))"
            )
        if self.needs_source_train and outputs.source_train_features is None:
            raise ValueError(f"validator '{self.name}' needs source training data (source_train=...)")

    def __call__(self, model: Any, target: Any, source_val: Any = None, source_train: Any = None) -> float:
        """Score ``model`` directly from data (collects its outputs first)."""
        if self.needs_source_val and source_val is None:
            self.check(ModelOutputs(torch.empty(0), torch.empty(0)))
        outputs = collect_outputs(model, target, source_val, source_train if self.needs_source_train else None)
        return self.score(outputs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


#: Every validator by name; ``@register_validator`` fills it.
VALIDATORS: Registry[type[Validator]] = Registry("validator")

V = TypeVar("V", bound="type[Validator]")


def register_validator(cls: V) -> V:
    """Class decorator that registers a validator under its ``name``."""
    return VALIDATORS.add(cls.name, cls)


@register_validator
class SourceAccuracy(Validator):
    """Accuracy on a held-out labeled *source* split (the classic, often strong baseline)."""

    name = "source_accuracy"
    needs_source_val = True

    def score(self, outputs: ModelOutputs) -> float:
        self.check(outputs)
        return scores.accuracy_score(outputs.source_val_logits, outputs.source_val_labels)


@register_validator
class Entropy(Validator):
    """Negative mean entropy of target predictions (see :func:`scores.entropy_score`)."""

    name = "entropy"

    def score(self, outputs: ModelOutputs) -> float:
        return scores.entropy_score(outputs.target_logits)


@register_validator
class InformationMaximization(Validator):
    """Diversity minus entropy of target predictions (see :func:`scores.im_score`)."""

    name = "im"

    def score(self, outputs: ModelOutputs) -> float:
        return scores.im_score(outputs.target_logits)


@register_validator
class SND(Validator):
    """Soft neighborhood density of target predictions (Saito et al., ICCV 2021). O(n^2) in the number of
    target examples: beyond 4,096 it averages over a sample of rows (see :func:`~adapt.validators.snd_score`)."""

    name = "snd"

    def __init__(self, temperature: float = 0.05) -> None:
        self.temperature = temperature

    def score(self, outputs: ModelOutputs) -> float:
        return scores.snd_score(outputs.target_logits, self.temperature)


@register_validator
class BNM(Validator):
    """Batch nuclear norm of target predictions (Cui et al., CVPR 2020; Musgrave et al., ECCV 2022)."""

    name = "bnm"

    def score(self, outputs: ModelOutputs) -> float:
        return scores.bnm_score(outputs.target_logits)


@register_validator
class ClassAMI(Validator):
    """Agreement of k-means clusters of target features with predicted classes (Musgrave et al., 2022):
    the ``ClassAMICentroidInit`` of their tables (features L2-normalized, k-means started from the
    predicted classes' centroids; see :func:`~adapt.validators.scores.class_ami_score`)."""

    name = "class_ami"
    revision = 2  # 0.2.0: normalized features, centroid initialization (was k-means++ on raw features)

    def score(self, outputs: ModelOutputs) -> float:
        return scores.class_ami_score(outputs.target_features, outputs.target_logits)


@register_validator
class DEV(Validator):
    """Deep embedded validation (You et al., ICML 2019): importance-weighted source-validation loss
    with a control variate; the score is the negative risk. ``normalization='max'`` gives DEVN."""

    name = "dev"
    needs_source_val = True
    needs_source_train = True
    normalization: str | None = None

    def score(self, outputs: ModelOutputs) -> float:
        self.check(outputs)
        weights = scores.domain_importance_weights(
            outputs.source_train_features,
            outputs.source_val_features,
            outputs.target_features,
        )
        losses = F.cross_entropy(outputs.source_val_logits, outputs.source_val_labels, reduction="none")
        return -scores.dev_risk(weights, losses.numpy(), self.normalization)


@register_validator
class DEVN(DEV):
    """DEV with max-normalized importance weights (Musgrave et al., ECCV 2022)."""

    name = "devn"
    normalization = "max"


@register_validator
class ReverseValidation(Validator):
    """Reverse validation: train back from pseudo-labeled target features, score on source (expensive-ish)."""

    name = "reverse"
    needs_source_val = True

    def score(self, outputs: ModelOutputs) -> float:
        self.check(outputs)
        return scores.reverse_validation_score(
            outputs.target_features, outputs.target_logits,
            outputs.source_val_features, outputs.source_val_labels,
        )  # fmt: skip


def create_validator(name: str) -> Validator:
    """A validator by name; an unknown name lists the valid ones."""
    return VALIDATORS.get(name)()


class ValidationCallback:
    """Training callback: score every validator every ``every`` steps and keep the best checkpoint.

    The scores join the training history as ``val_<name>`` columns. The model state with the best
    ``select`` score (a validator name, never target accuracy) is kept in memory;
    :meth:`restore_best` loads it back into the model.

    Parameters
    ----------
    validators : names or :class:`Validator` objects.
    target : unlabeled target inputs (labels of a labeled Dataset are dropped).
    source_val : labeled held-out source split, needed by source_accuracy, dev, devn and reverse.
    source_train : source training data, needed by dev and devn (for the domain classifier).
    every : steps between evaluations.
    select : the validator whose best checkpoint is kept (None: keep nothing).
    source_calibration : for source-free adaptation, where the adapter sees no source data: the
        *source model's* logits on a held-out labeled source split and its labels, computed once by
        whoever trained that model. The accuracy estimators calibrate on them instead of on the
        adapted model's (the model being adapted is never run on source data). Only estimators
        (``estimates_accuracy``) may use it.
    """

    def __init__(
        self,
        validators: list[str | Validator],
        target: Any,
        source_val: Any = None,
        source_train: Any = None,
        every: int = 100,
        select: str | None = None,
        max_examples: int = 4000,
        source_calibration: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        self.validators = [create_validator(v) if isinstance(v, str) else v for v in validators]
        names = [v.name for v in self.validators]
        if select is not None and select not in names:
            raise ValueError(f"select={select!r} is not among the validators: {', '.join(names)}")
        if source_calibration is not None:
            if source_val is not None:
                raise ValueError("give source_val or source_calibration, not both")
            other = [v.name for v in self.validators if (v.needs_source_val or v.needs_source_train)
                     and not getattr(v, "estimates_accuracy", False)]  # fmt: skip
            if other:
                raise ValueError(f"validator(s) {', '.join(other)} score the adapted model on source data; with "
                                 "source_calibration only the accuracy estimators read the source side")  # fmt: skip
        self.source_calibration = source_calibration
        missing = [v.name for v in self.validators
                   if v.needs_source_val and source_val is None and source_calibration is None]  # fmt: skip
        if missing:
            raise ValueError(
                f"validator(s) {', '.join(missing)} need a labeled source validation split (source_val=...); "
                f"hold some source data out (suite key source_holdout, or task(..., source_holdout=0.1))"
            )
        self.target, self.source_val, self.source_train = target, source_val, source_train
        self.every = every
        self.select = select
        self.max_examples = max_examples
        self.best_step: int | None = None
        self.best_score = -float("inf")
        self.best_state: dict[str, torch.Tensor] | None = None

    def __call__(self, step: int, model: Any) -> dict[str, float]:
        needs_train = any(v.needs_source_train for v in self.validators)
        outputs = collect_outputs(
            model, self.target, self.source_val, self.source_train if needs_train else None, self.max_examples
        )
        if self.source_calibration is not None:
            outputs.source_val_logits, outputs.source_val_labels = self.source_calibration
        result = {f"val_{v.name}": v.score(outputs) for v in self.validators}
        if self.select is not None and result[f"val_{self.select}"] > self.best_score:
            self.best_score = result[f"val_{self.select}"]
            self.best_step = step
            self.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        return result

    def state_dict(self) -> dict[str, Any]:
        """The best checkpoint so far (saved in mid-run training checkpoints)."""
        return {"best_step": self.best_step, "best_score": self.best_score, "best_state": self.best_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_step, self.best_score, self.best_state = state["best_step"], state["best_score"], state["best_state"]

    def restore_best(self, model: Any) -> int | None:
        """Load the best checkpoint into ``model``; returns its step (None if nothing was kept)."""
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
        return self.best_step
