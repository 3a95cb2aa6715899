"""The accuracy estimators (adapt/validators/accuracy.py): closed forms, and calibration doing its job
(the comparison with the ATC authors' code is tests/reference/test_accuracy_estimators_vs_authors.py)."""

import math

import numpy as np
import pytest
import torch

from adapt.validators import VALIDATORS, ModelOutputs, create_validator
from adapt.validators.accuracy import (
    accuracy_estimators,
    atc_threshold,
    mano_normalize,
    mano_score,
    normalized_nuclear_norm,
)

ESTIMATORS = ["avg_confidence", "doc", "atc_mc", "atc_ne", "nuclear", "mano"]


def outputs(target_logits, source_logits=None, source_labels=None):
    n = len(target_logits)
    return ModelOutputs(target_logits, torch.zeros(n, 1), source_logits, None, source_labels)


def test_the_estimators_are_registered_validators():
    assert accuracy_estimators() == ESTIMATORS
    assert all(VALIDATORS[name].needs_source_val == (name != "avg_confidence") for name in ESTIMATORS)
    assert not any(getattr(VALIDATORS[name], "estimates_accuracy", False) for name in ("im", "snd", "entropy"))


def test_closed_forms():
    k = 4
    uniform = torch.zeros(12, k)
    confident = torch.eye(k).repeat(3, 1) * 50
    assert create_validator("avg_confidence").score(outputs(uniform)) == pytest.approx(1 / k)
    assert create_validator("avg_confidence").score(outputs(confident)) == pytest.approx(1.0)
    # the nuclear norm: 1 for confident, balanced predictions; 1/K for uniform ones (rank one, sqrt(N/K))
    assert normalized_nuclear_norm(torch.softmax(confident, 1).numpy()) == pytest.approx(1.0)
    assert normalized_nuclear_norm(np.full((12, k), 1 / k)) == pytest.approx(1 / k)
    # collapsed: every example the same class, confidently: rank one again, sqrt(N)/sqrt(N K)
    collapsed = np.zeros((12, k))
    collapsed[:, 0] = 1
    assert normalized_nuclear_norm(collapsed) == pytest.approx(1 / math.sqrt(k))
    # MaNo's 4-norm: K^(-1/4) for one-hot rows, 1/K for uniform ones
    assert mano_score(collapsed) == pytest.approx(k ** (-1 / 4))
    assert mano_score(np.full((12, k), 1 / k)) == pytest.approx(1 / k)


def test_mano_normalizes_by_softmax_only_when_the_predictions_are_far_from_uniform():
    """Xie et al., NeurIPS 2024, Eq. 6: cross-entropy to the uniform distribution above 5 -> softmax, else
    the Taylor softmax 1 + z + z^2/2 (minus its row minimum, rows summing to 1)."""
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    taylor = 1 + logits + logits**2 / 2
    taylor -= taylor.min(1, keepdims=True)
    assert np.allclose(mano_normalize(logits), taylor / taylor.sum(1, keepdims=True))
    confident = logits * 20  # cross-entropy to uniform ~ 20: softmax
    assert np.allclose(mano_normalize(confident), torch.softmax(torch.tensor(confident), 1).numpy())
    assert np.allclose(mano_normalize(logits, threshold=0.0), torch.softmax(torch.tensor(logits), 1).numpy())


def test_on_the_source_itself_the_calibrated_estimators_give_source_accuracy():
    rng = np.random.default_rng(0)
    labels = torch.from_numpy(rng.integers(0, 5, 500))
    logits = torch.from_numpy(rng.normal(size=(500, 5)))
    logits[torch.arange(500), labels] += 2.0
    accuracy = float((logits.argmax(1) == labels).double().mean())
    same = outputs(logits, logits, labels)
    assert 0.6 < accuracy < 0.95
    for name in ("doc", "nuclear", "mano"):
        assert create_validator(name).score(same) == pytest.approx(accuracy)
    for name in ("atc_mc", "atc_ne"):  # the threshold is the e-th lowest score, itself counted: + 1/N
        assert create_validator(name).score(same) == pytest.approx(accuracy + 1 / 500)


def test_threshold_separates_as_many_source_examples_as_the_model_gets_wrong():
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    correct = np.array([0, 1, 0, 1, 1, 1, 1, 1, 1, 1], dtype=bool)  # 2 errors
    assert atc_threshold(scores, correct) == 0.2  # the 2nd lowest score
    assert atc_threshold(scores, np.ones(10, dtype=bool)) == 0.1  # no error: the lowest score


def overconfident_model(seed, n=2000, k=5, accuracy=0.8):
    """Logits whose max-softmax is ~0.99 everywhere while only ``accuracy`` of the predictions are right."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    predicted = np.where(rng.random(n) < accuracy, labels, (labels + rng.integers(1, k, n)) % k)
    logits = rng.normal(size=(n, k)) * 0.1
    logits[np.arange(n), predicted] += 6.0 + rng.normal(size=n) * 0.5
    return torch.from_numpy(logits), torch.from_numpy(labels)


@pytest.mark.parametrize("name", ["doc", "atc_mc", "atc_ne", "nuclear", "mano"])
def test_calibration_on_the_source_corrects_an_overconfident_model(name):
    """The same overconfident model on source and target (80% and 70% accurate, ~99% confident):
    average confidence says ~99%; the estimators that calibrate on the source land near the truth."""
    source_logits, source_labels = overconfident_model(0, accuracy=0.8)
    target_logits, target_labels = overconfident_model(1, accuracy=0.7)
    true = float((target_logits.argmax(1) == target_labels).double().mean())
    data = outputs(target_logits, source_logits, source_labels)
    naive = create_validator("avg_confidence").score(data)
    calibrated = create_validator(name).score(data)
    assert naive > 0.97
    assert abs(calibrated - true) < abs(naive - true) - 0.1
