"""A scikit-learn estimator around any registered method, with SKADA's ``sample_domain`` convention.

>>> import numpy as np
>>> from adapt.sklearn import DomainAdaptationClassifier, validator_scorer
>>> from adapt.data import task
>>> t = task("moons", "source", "rotated")
>>> (xs, ys), xt = t.source_train.tensors, t.target_train.tensors[0]
>>> X = np.concatenate([xs.numpy(), xt.numpy()])
>>> y = np.concatenate([ys.numpy(), -np.ones(len(xt), dtype=int)])      # -1: a target sample, unlabeled
>>> clf = DomainAdaptationClassifier("dann", hidden=(32,), max_steps=200).fit(X, y)
>>> clf.predict(xt.numpy()).shape
(300,)
>>> round(validator_scorer("im")(clf, X, y), 3) <= 1.0                   # label-free: target rows only
True

Domains follow SKADA: ``sample_domain`` positive for source samples and negative for target samples,
or, when it is not given, ``y == -1`` marks the target (its labels are masked). Target labels are never
read. Without any target sample, the estimator trains on the source alone (the method's adaptation term
then compares the source with itself), so that it also works as a plain classifier in any pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import methods
from .models import MLP
from .validators import create_validator

#: SKADA's mark for a masked (target) label.
MASKED = -1


def split_domains(
    X: np.ndarray, y: np.ndarray | None, sample_domain: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (source, target) of the rows, by ``sample_domain``'s sign or, without it, ``y == -1``."""
    if sample_domain is not None:
        sample_domain = np.asarray(sample_domain)
        if sample_domain.shape != (len(X),):
            raise ValueError(
                f"sample_domain must have one entry per sample ({len(X)}), got shape {sample_domain.shape}"
            )
        if (sample_domain == 0).any():
            raise ValueError("sample_domain must be positive (source) or negative (target), not 0")
        return sample_domain > 0, sample_domain < 0
    if y is None:
        return np.zeros(len(X), bool), np.ones(len(X), bool)
    target = np.asarray(y == MASKED) if np.asarray(y).dtype.kind in "iuf" else np.zeros(len(X), bool)
    return ~target, target


class DomainAdaptationClassifier(ClassifierMixin, BaseEstimator):
    """Any registered UDA method (``method``) as a scikit-learn classifier.

    Parameters
    ----------
    method : a name of :data:`adapt.methods.METHODS` (``"dann"``, ``"dan"``, ``"coral"``, ...).
    hidden : widths of the default backbone, an MLP over the flattened features.
    method_params : keyword arguments of the method (its hyperparameters), None for its defaults.
    max_steps, batch_size, lr : the training run (``Adapter.fit``).
    random_state : seed of the run (weights, batches); an int, so results repeat.
    device : ``"cpu"``, ``"cuda"`` or ``"auto"``.
    """

    def __init__(
        self,
        method: str = "dann",
        hidden: tuple[int, ...] = (64,),
        method_params: dict[str, Any] | None = None,
        max_steps: int = 500,
        batch_size: int = 64,
        lr: float = 0.01,
        random_state: int = 0,
        device: str = "cpu",
    ) -> None:
        self.method = method
        self.hidden = hidden
        self.method_params = method_params
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.lr = lr
        self.random_state = random_state
        self.device = device

    def fit(self, X: Any, y: Any, sample_domain: Any = None) -> DomainAdaptationClassifier:
        """Train on the labeled source rows and the unlabeled target rows of ``X``."""
        X, y = validate_data(self, X, y, dtype=np.float32)
        source, target = split_domains(X, y, sample_domain)
        if not source.any():
            raise ValueError("no source sample: fit needs labeled source rows (sample_domain > 0, or y != -1)")
        if source.sum() < 2:  # one labeled point: nothing to generalize from (scikit-learn's 1-sample check)
            raise ValueError("fit needs at least 2 labeled source samples; got 1 sample")
        check_classification_targets(y[source])
        self.classes_, ys = np.unique(y[source], return_inverse=True)
        xs, xt = X[source], X[target] if target.any() else X[source]
        torch.manual_seed(self.random_state)
        backbone = MLP(X.shape[1], tuple(self.hidden))
        self.model_ = methods.create(self.method, backbone, max(len(self.classes_), 2), **(self.method_params or {}))
        self.model_.fit((xs, ys), xt, steps=self.max_steps, batch_size=self.batch_size, lr=self.lr,
                        seed=self.random_state, device=self.device, verbose=False)  # fmt: skip
        return self

    def _logits(self, X: Any) -> torch.Tensor:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, reset=False)
        return self.model_.predict_logits(torch.from_numpy(X))[:, : len(self.classes_)]

    def predict_proba(self, X: Any, sample_domain: Any = None) -> np.ndarray:
        return self._logits(X).softmax(1).numpy()

    def predict(self, X: Any, sample_domain: Any = None) -> np.ndarray:
        predicted = self._logits(X).argmax(1).numpy()  # (checks that the estimator is fitted)
        return self.classes_[predicted]

    def decision_function(self, X: Any, sample_domain: Any = None) -> np.ndarray:
        logits = self._logits(X).numpy()
        return logits[:, 1] - logits[:, 0] if len(self.classes_) == 2 else logits

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


def validator_scorer(name: str = "im") -> Callable[..., float]:
    """A label-free scorer for ``GridSearchCV(scoring=...)``: the validator ``name`` (see
    :mod:`adapt.validators`) on the target rows of the evaluated fold (``y == -1``; all rows when the
    fold has none). Higher is better, as scikit-learn expects. Validators that need labeled source data
    (``source_accuracy``, ``dev``) are not label-free on the target and are refused."""
    validator = create_validator(name)
    if validator.needs_source_val or validator.needs_source_train:
        raise ValueError(
            f"validator {name!r} needs labeled source data; use a target-only validator (im, entropy, ...)"
        )

    def score(estimator: DomainAdaptationClassifier, X: Any, y: Any = None) -> float:
        X = np.asarray(X, dtype=np.float32)
        _, target = split_domains(X, np.asarray(y) if y is not None else None, None)
        rows = X[target] if target.any() else X
        return float(validator(estimator.model_, torch.from_numpy(rows)))

    score.__name__ = f"validator_{name}"
    return score
