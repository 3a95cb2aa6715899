"""Know before you deploy: how accurate is a model on an unlabeled target, and did adapting help?

>>> from adapt import DANN, SourceOnly, estimate_accuracy, guard
>>> from adapt.data import task
>>> from adapt.models import MLP
>>> t = task("moons", "source", "rotated", source_holdout=0.2)
>>> model = DANN(MLP(2, (16,)), num_classes=2)
>>> _ = model.fit(t.source_train, t.target_train, steps=100, device="cpu", verbose=False)
>>> estimate = estimate_accuracy(model, t.target_eval, t.source_val)
>>> 0.0 <= estimate.low <= estimate.accuracy <= estimate.high <= 1.0
True

The estimators are the validators of :mod:`adapt.validators.accuracy` (``doc`` by default); this
module adds the bootstrap interval over target examples, the warnings that say when an estimate cannot
be trusted, model agreement (which needs a second model), and :func:`guard`, which keeps the source-only
model when the adapted one is estimated to be worse.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .validators import VALIDATORS, ModelOutputs, collect_outputs, create_validator
from .validators.accuracy import accuracy_estimators

#: The estimator :func:`estimate_accuracy` uses unless told: the lowest mean absolute error on the tuning
#: half of the shift zoo (``benchmarks/study_guard.py``; docs/decisions.md).
DEFAULT_ESTIMATOR = "doc"
#: The estimator and margin (accuracy, 0 to 1) of :func:`guard`: it keeps the source-only model when the
#: adapted model's estimate is more than the margin below the source-only model's. Chosen on the tuning
#: half by the lowest negative transfer rate (``benchmarks/study_guard.py``; docs/decisions.md).
GUARD_ESTIMATOR = "nuclear"
GUARD_MARGIN = 0.0
#: Fewer target (or held-out source) examples than this and an estimate comes with a warning.
MIN_EXAMPLES = 100
#: A bootstrap interval wider than this (accuracy, 0 to 1) comes with a warning.
MAX_INTERVAL_WIDTH = 0.10


@dataclass
class AccuracyEstimate:
    """A label-free estimate of target accuracy (0 to 1) with its bootstrap interval over target examples.

    ``warnings`` name the reasons not to trust it (empty: none known); ``trusted`` is True when there are none.
    """

    estimator: str
    accuracy: float
    low: float
    high: float
    confidence: float
    target_examples: int
    warnings: list[str] = field(default_factory=list)

    @property
    def trusted(self) -> bool:
        return not self.warnings

    def __str__(self) -> str:
        text = (f"{self.accuracy:.3f} ({self.confidence:.0%} interval {self.low:.3f}-{self.high:.3f}; "
                f"{self.estimator} on {self.target_examples} target examples)")  # fmt: skip
        return text + "".join(f"\n  warning: {w}" for w in self.warnings)


def agreement_rate(logits: torch.Tensor, reference_logits: torch.Tensor) -> float:
    """The fraction of examples on which two models predict the same class. For two runs of the same
    recipe that differ only in their seed, it estimates either run's accuracy (the disagreement is the
    test error in expectation for a calibrated ensemble: Jiang et al., ICLR 2022; Baek et al., NeurIPS 2022)."""
    return float((logits.argmax(1) == reference_logits.argmax(1)).double().mean())


def _calibrates(estimator: str) -> bool:
    """Whether the estimator reads the labeled source split (as its validator class says)."""
    return estimator != "agreement" and VALIDATORS[estimator].needs_source_val


def _score(estimator: str, outputs: ModelOutputs, reference_logits: torch.Tensor | None) -> float:
    if estimator == "agreement":
        assert reference_logits is not None
        return agreement_rate(outputs.target_logits, reference_logits)
    return create_validator(estimator).score(outputs)


def _trust_warnings(estimator: str, outputs: ModelOutputs, low: float, high: float) -> list[str]:
    found = []
    n = len(outputs.target_logits)
    if n < MIN_EXAMPLES:
        found.append(f"only {n} target examples (fewer than {MIN_EXAMPLES}): the estimate is noisy")
    if outputs.source_val_labels is not None and _calibrates(estimator):
        m = len(outputs.source_val_labels)
        if m < MIN_EXAMPLES:
            found.append(f"only {m} held-out source examples (fewer than {MIN_EXAMPLES}) to calibrate on")
        if bool((outputs.source_val_logits.argmax(1) == outputs.source_val_labels).all()):
            found.append("the model makes no error on the held-out source: the calibration cannot learn "
                         "what an error looks like, so the estimate leans to the optimistic side")  # fmt: skip
    if high - low > MAX_INTERVAL_WIDTH:
        found.append(f"the interval is {high - low:.2f} wide (more than {MAX_INTERVAL_WIDTH}): more target data")
    if len(torch.unique(outputs.target_logits.argmax(1))) == 1:
        found.append("every target example gets the same class: a collapsed model; estimators misjudge it")
    return found


def estimate_accuracy(
    model: Any,
    target: Any,
    source_val: Any = None,
    estimator: str = DEFAULT_ESTIMATOR,
    *,
    reference: Any = None,
    bootstrap: int = 200,
    confidence: float = 0.95,
    max_examples: int = 4000,
    seed: int = 0,
    source_calibration: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> AccuracyEstimate:
    """Estimate ``model``'s accuracy on the unlabeled ``target``, with a bootstrap interval.

    Parameters
    ----------
    model : a fitted adapter (anything with ``predict_logits`` and ``features``).
    target : target inputs (a labeled Dataset's labels are dropped: they are never read).
    source_val : labeled held-out source data, ``(x, y)`` or a Dataset, that the model did not train on;
        every estimator but ``avg_confidence`` and ``agreement`` calibrates on it.
    estimator : ``doc`` (default), ``atc_mc``, ``atc_ne``, ``nuclear``, ``mano``, ``avg_confidence``
        (:mod:`adapt.validators.accuracy`), or ``agreement`` with ``reference``.
    reference : for ``agreement``: a second model trained by the same recipe with another seed.
    bootstrap : resamples of the target examples for the interval (0: no interval).
    confidence : the interval's coverage.
    max_examples : at most this many examples per split are scored (a fixed sample beyond).
    source_calibration : instead of ``source_val``, for a source-free model: its *source model's* logits on
        labeled held-out source data and those labels, as :func:`source_calibration` computes them before
        adapting (the provider's side); the estimators calibrate on them.
    """
    if source_calibration is not None and source_val is not None:
        raise ValueError("pass source_val (the model's own calibration) or source_calibration (its source "
                         "model's), not both")  # fmt: skip
    known = [*accuracy_estimators(), "agreement"]
    if estimator not in known:
        raise ValueError(f"unknown accuracy estimator {estimator!r}; choose one of: {', '.join(known)}")
    if (estimator == "agreement") != (reference is not None):
        raise ValueError("estimator='agreement' needs reference=<a second model>, and only it takes one")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    needs_source = _calibrates(estimator)
    if needs_source and source_val is None and source_calibration is None:
        raise ValueError(f"estimator {estimator!r} calibrates on labeled held-out source data: pass "
                         "source_val=(x, y) (or, source-free, source_calibration=adapt.estimate.source_calibration("
                         "source_model, ...))")  # fmt: skip
    outputs = collect_outputs(model, target, source_val if needs_source else None, max_examples=max_examples, seed=seed)
    if needs_source and source_calibration is not None:
        outputs.source_val_logits, outputs.source_val_labels = (torch.as_tensor(t) for t in source_calibration)
    reference_logits = None
    if reference is not None:
        reference_logits = collect_outputs(reference, target, max_examples=max_examples, seed=seed).target_logits
    value = _score(estimator, outputs, reference_logits)
    low, high = _bootstrap_interval(estimator, outputs, reference_logits, bootstrap, confidence, seed) or (value, value)
    found = _trust_warnings(estimator, outputs, low, high)
    return AccuracyEstimate(estimator, value, low, high, confidence, len(outputs.target_logits), found)


def _bootstrap_interval(estimator: str, outputs: ModelOutputs, reference_logits: torch.Tensor | None,
                        resamples: int, confidence: float, seed: int) -> tuple[float, float] | None:  # fmt: skip
    """The estimate's ``confidence`` interval over ``resamples`` resamples of the target examples (None: 0)."""
    if not resamples:
        return None
    rng = np.random.default_rng(seed)
    n = len(outputs.target_logits)
    draws = []
    for _ in range(resamples):
        rows = torch.from_numpy(rng.integers(0, n, n))
        resampled = dataclasses.replace(outputs, target_logits=outputs.target_logits[rows],
                                        target_features=outputs.target_features[rows])  # fmt: skip
        draws.append(_score(estimator, resampled, None if reference_logits is None else reference_logits[rows]))
    low, high = np.quantile(draws, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def source_calibration(
    source_model: Any, source_val: Any, max_examples: int = 4000, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """What a source model's provider hands over for source-free accuracy estimates: the model's logits
    on labeled held-out source data (``(x, y)`` or a Dataset) and the labels, computed before anyone
    adapts it. ``estimate_accuracy(adapted, target, source_calibration=...)`` calibrates on them; that
    assumes adapting changed the model's confidence on the target only (see docs/estimation.md)."""
    outputs = collect_outputs(source_model, source_val[0] if isinstance(source_val, (tuple, list)) else source_val,
                              source_val, max_examples=max_examples, seed=seed)  # fmt: skip
    assert outputs.source_val_logits is not None and outputs.source_val_labels is not None
    return outputs.source_val_logits, outputs.source_val_labels


@dataclass
class GuardDecision:
    """What :func:`guard` decided: ``kept`` is ``"adapted"`` or ``"source_only"``, ``model`` is that model."""

    kept: str
    model: Any
    adapted: AccuracyEstimate
    source_only: AccuracyEstimate
    margin: float
    message: str

    def as_dict(self) -> dict[str, Any]:
        """The decision as plain values (what the adapted model's ``history_.attrs['guard']`` holds)."""
        return {"kept": self.kept, "estimator": self.adapted.estimator, "margin": self.margin,
                "adapted_estimate": self.adapted.accuracy, "source_only_estimate": self.source_only.accuracy,
                "message": self.message}  # fmt: skip


def guard(
    adapted: Any,
    source_only: Any,
    target: Any,
    source_val: Any,
    estimator: str = GUARD_ESTIMATOR,
    margin: float = GUARD_MARGIN,
    **estimate_options: Any,
) -> GuardDecision:
    """Keep the source-only model when adapting likely hurt: a guard against negative transfer.

    Both models' target accuracies are estimated without labels (:func:`estimate_accuracy`); when the
    adapted model's estimate is more than ``margin`` below the source-only model's, the source-only model
    is kept and a warning names both estimates. The decision is returned, and recorded in the adapted
    model's ``history_.attrs['guard']`` when it has a history.
    """
    if not 0 <= margin < 1:
        raise ValueError(f"margin is an accuracy difference in [0, 1), got {margin}")
    ours = estimate_accuracy(adapted, target, source_val, estimator, **estimate_options)
    baseline = estimate_accuracy(source_only, target, source_val, estimator, **estimate_options)
    hurt = ours.accuracy < baseline.accuracy - margin
    kept = "source_only" if hurt else "adapted"
    message = (f"{estimator} estimates the adapted model at {ours.accuracy:.3f} and the source-only model at "
               f"{baseline.accuracy:.3f} on the target: kept the {kept.replace('_', '-')} model")  # fmt: skip
    if hurt:
        warnings.warn(f"adapting likely hurt (negative transfer): {message}", UserWarning, stacklevel=2)
    decision = GuardDecision(kept, source_only if hurt else adapted, ours, baseline, margin, message)
    if getattr(adapted, "history_", None) is not None:
        adapted.history_.attrs["guard"] = decision.as_dict()
    return decision
