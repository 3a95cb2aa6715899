"""Label-free accuracy estimators: validators whose score *is* an estimate of target accuracy (0 to 1).

Unlike the other validators, which only rank checkpoints, these say how accurate a model is on its
unlabeled target. All but average confidence calibrate on the labeled held-out source split: they
learn how the model's confidence relates to its correctness there and carry that relation over.

* ``avg_confidence``: the mean max-softmax probability on the target (Hendrycks & Gimpel, ICLR 2017).
* ``doc``: difference of confidences (Guillory et al., ICCV 2021): source accuracy plus the change of
  the mean max-softmax probability from source to target.
* ``atc_mc`` and ``atc_ne``: average thresholded confidence (Garg et al., ICLR 2022) with the
  max-confidence and the negative-entropy score: the threshold at which as many source examples fall
  below it as the model gets wrong, then the fraction of target examples above it.
* ``nuclear``: the normalized nuclear norm of the target prediction matrix (Deng et al., "Confidence
  and Dispersity Speak", ICML 2023), which grows with both confidence and dispersity, calibrated on
  the source as source accuracy x (target norm / source norm). The paper maps the norm to accuracy with
  a regression fitted on synthetic shifts of the source; the ratio is this library's cheaper calibration.
* ``mano``: MaNo (Xie et al., NeurIPS 2024): the scaled entrywise 4-norm of the prediction matrix, its
  rows normalized by softmax or, when the predictions are close to uniform, by a second-order Taylor
  softmax; calibrated on the source by the same ratio as ``nuclear`` (the paper reports correlations
  only, so the ratio is again this library's).

:func:`adapt.estimate_accuracy` gives any of them with a bootstrap interval and the warnings that say
when not to trust it; :func:`adapt.guard` uses one to catch negative transfer.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from .validators import VALIDATORS, ModelOutputs, Validator, register_validator


def max_confidence(probs: np.ndarray) -> np.ndarray:
    """Each example's largest class probability."""
    return np.max(probs, axis=-1)


def negative_entropy(probs: np.ndarray) -> np.ndarray:
    """Each example's :math:`\\sum_k p_k \\log p_k` (the ATC authors' ``get_entropy``, 1e-20 inside the log)."""
    return np.sum(probs * np.log(probs + 1e-20), axis=1)


def atc_threshold(source_scores: np.ndarray, source_correct: np.ndarray) -> float:
    """The ATC threshold (Garg et al., ICLR 2022, Eq. 1 solved on the source): the score t at which the
    number of held-out source examples scoring below t best matches the number the model gets wrong.

    As the authors' ``find_ATC_threshold`` computes it: after sorting the scores, the score at the first
    position where |errors still above - correct ones below| is smallest. One departure: when the model
    makes no source error the authors return 0.0 (no position beats the start), which for the
    negative-entropy score (always <= 0) estimates a target accuracy near 0; here the threshold is then
    the lowest source score (every source example at or above it, as its 100% accuracy says).
    """
    scores = np.asarray(source_scores, dtype=np.float64)
    correct = np.asarray(source_correct).astype(bool)
    order = np.argsort(scores)
    sorted_scores, sorted_correct = scores[order], correct[order]
    errors_above = (~correct).sum() - np.cumsum(~sorted_correct)  # the authors' fp after position i
    correct_below = np.cumsum(sorted_correct)  # their fn
    gaps = np.abs(errors_above - correct_below)
    best = int(np.argmin(gaps))
    if not (~correct).any():
        return float(sorted_scores[0])
    return float(sorted_scores[best])  # with an error, some position always beats the start


def atc_accuracy(threshold: float, target_scores: np.ndarray) -> float:
    """The ATC estimate: the fraction of target examples scoring at or above ``threshold``."""
    return float(np.mean(np.asarray(target_scores) >= threshold))


def normalized_nuclear_norm(probs: np.ndarray) -> float:
    """:math:`\\lVert P \\rVert_* / \\sqrt{N \\min(N, K)}` of the N x K softmax matrix (Deng et al., ICML 2023):
    1 for confident predictions spread evenly over the classes, lower when unsure or collapsed. Tested against
    closed forms only: the authors' code was not found here to check the normalization against."""
    n, k = probs.shape
    return float(np.linalg.svd(probs, compute_uv=False).sum() / np.sqrt(n * min(n, k)))


#: MaNo's criterion threshold (Xie et al., NeurIPS 2024, Eq. 6; the authors' ``scaling_method``: ``loss > 5``).
MANO_THRESHOLD = 5.0


def mano_normalize(
    logits: np.ndarray, threshold: float = MANO_THRESHOLD, *, criterion_logits: np.ndarray | None = None
) -> np.ndarray:
    """MaNo's row normalization sigma (Xie et al., NeurIPS 2024, Eq. 6), as the authors' ``scaling_method``.

    The criterion is the cross-entropy between the softmax of ``criterion_logits`` (default: ``logits``)
    and the uniform distribution, averaged over examples; above ``threshold`` the rows are the softmax,
    otherwise the Taylor softmax of order 2: ``1 + z + z^2 / 2``, minus its row minimum, L1-normalized.
    """
    logits = np.asarray(logits, dtype=np.float64)
    reference = logits if criterion_logits is None else np.asarray(criterion_logits, dtype=np.float64)
    if uniform_cross_entropy(reference) > threshold:
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)
    taylor = 1 + logits + logits**2 / 2
    taylor = taylor - taylor.min(axis=1, keepdims=True)
    return taylor / np.maximum(taylor.sum(axis=1, keepdims=True), 1e-12)  # torch's normalize(p=1) eps


def uniform_cross_entropy(logits: np.ndarray) -> float:
    """:math:`-\\frac{1}{NK}\\sum_{i,k} \\log \\mathrm{softmax}(z_i)_k`: MaNo's criterion (the authors'
    ``uniform_cross_entropy``, ``F.cross_entropy`` against uniform targets)."""
    logits = np.asarray(logits, dtype=np.float64)
    top = logits.max(axis=1, keepdims=True)
    log_probs = logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
    return float(-log_probs.mean())


def mano_score(probs: np.ndarray, p: float = 4) -> float:
    """:math:`\\lVert P \\rVert_p / (NK)^{1/p}`, the entrywise p-norm of the normalized N x K prediction matrix
    (Xie et al., NeurIPS 2024, Eq. 2; p = 4 in all their scripts): :math:`K^{-1/p}` for one-hot rows,
    :math:`1/K` for uniform ones."""
    return float(np.mean(np.asarray(probs, dtype=np.float64) ** p) ** (1 / p))


def _probs(logits: torch.Tensor) -> np.ndarray:
    return torch.softmax(logits.double(), dim=1).numpy()


def _source(outputs: ModelOutputs) -> tuple[np.ndarray, np.ndarray]:
    """Source-validation probabilities and which of them the model gets right."""
    probs = _probs(outputs.source_val_logits)
    return probs, probs.argmax(1) == outputs.source_val_labels.numpy()


def _ratio_to_source(source_correct: np.ndarray, target_score: float, source_score: float) -> float:
    """This library's calibration of a score that grows with accuracy (``nuclear``, ``mano``): source accuracy
    x target score / source score, clipped to [0, 1]."""
    return float(np.clip(source_correct.mean() * target_score / source_score, 0.0, 1.0))


class AccuracyEstimator(Validator):
    """A validator whose score is an estimate of target accuracy in [0, 1]."""

    estimates_accuracy: ClassVar[bool] = True
    needs_source_val = True


@register_validator
class AverageConfidence(AccuracyEstimator):
    """Mean max-softmax probability on the target (no calibration: it trusts the model's confidence)."""

    name = "avg_confidence"
    needs_source_val = False

    def score(self, outputs: ModelOutputs) -> float:
        return float(max_confidence(_probs(outputs.target_logits)).mean())


@register_validator
class DifferenceOfConfidences(AccuracyEstimator):
    """DoC (Guillory et al., ICCV 2021): source accuracy + mean target confidence - mean source confidence."""

    name = "doc"

    def score(self, outputs: ModelOutputs) -> float:
        self.check(outputs)
        source_probs, correct = _source(outputs)
        target_conf = max_confidence(_probs(outputs.target_logits)).mean()
        return float(correct.mean() + target_conf - max_confidence(source_probs).mean())


class _ATC(AccuracyEstimator):
    score_function = staticmethod(max_confidence)

    def score(self, outputs: ModelOutputs) -> float:
        self.check(outputs)
        source_probs, correct = _source(outputs)
        threshold = atc_threshold(self.score_function(source_probs), correct)
        return atc_accuracy(threshold, self.score_function(_probs(outputs.target_logits)))


@register_validator
class ATCMaxConfidence(_ATC):
    """ATC with the max-softmax score (Garg et al., ICLR 2022, "ATC-MC")."""

    name = "atc_mc"


@register_validator
class ATCNegativeEntropy(_ATC):
    """ATC with the negative-entropy score (Garg et al., ICLR 2022, "ATC-NE"; their best on most shifts)."""

    name = "atc_ne"
    score_function = staticmethod(negative_entropy)


@register_validator
class NuclearNorm(AccuracyEstimator):
    """Normalized nuclear norm of the target predictions (Deng et al., ICML 2023), calibrated on the source:
    source accuracy x target norm / source norm, clipped to [0, 1]."""

    name = "nuclear"

    def score(self, outputs: ModelOutputs) -> float:
        self.check(outputs)
        source_probs, correct = _source(outputs)
        target = normalized_nuclear_norm(_probs(outputs.target_logits))
        return _ratio_to_source(correct, target, normalized_nuclear_norm(source_probs))


@register_validator
class MaNo(AccuracyEstimator):
    """MaNo (Xie et al., NeurIPS 2024) calibrated on the source: source accuracy x target score / source
    score, clipped to [0, 1]. One normalization for both sets, chosen by the criterion on the target (the
    authors choose it once, on the first test set, and keep it for the others).

    Departures from the authors' ``algs/mano.py`` (Renchunzi-Xie/MaNo), shown in
    ``tests/reference/test_accuracy_estimators_vs_authors.py``: the score is over the whole target matrix,
    not a mean of per-batch scores (batches of 128 there), and the criterion over all target examples,
    not the last of its first five batches; the logits come from the model in eval mode (the authors' run
    it in train mode, so BatchNorm uses each test batch's statistics).
    """

    name = "mano"
    p: ClassVar[float] = 4

    def score(self, outputs: ModelOutputs) -> float:
        self.check(outputs)
        target_logits = outputs.target_logits.double().numpy()
        source_logits = outputs.source_val_logits.double().numpy()
        target = mano_score(mano_normalize(target_logits), self.p)
        source = mano_score(mano_normalize(source_logits, criterion_logits=target_logits), self.p)
        return _ratio_to_source(_source(outputs)[1], target, source)


def accuracy_estimators() -> list[str]:
    """The names of the registered validators that estimate accuracy."""
    return [name for name, cls in VALIDATORS.items() if getattr(cls, "estimates_accuracy", False)]
