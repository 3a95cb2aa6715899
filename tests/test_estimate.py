"""adapt.estimate_accuracy and adapt.guard: intervals, trust warnings, agreement, the guard's decision."""

import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from adapt import SourceOnly, estimate_accuracy, guard
from adapt.data import task
from adapt.estimate import agreement_rate
from adapt.models import MLP


@pytest.fixture(scope="module")
def moons():
    return task("moons", "source", "rotated", source_holdout=0.2)


def fitted(t, steps, seed=0):
    torch.manual_seed(seed)
    model = SourceOnly(MLP(2, (16,)), num_classes=2)
    model.fit(t.source_train, t.target_train, steps=steps, seed=seed, device="cpu", verbose=False)
    return model


@pytest.fixture(scope="module")
def trained(moons):
    return fitted(moons, 300)


def true_accuracy(model, t):
    return model.score(t.target_test)


def test_the_estimate_comes_with_an_interval_and_never_reads_target_labels(moons, trained):
    estimate = estimate_accuracy(trained, moons.target_eval, moons.source_val, "atc_mc")
    assert estimate.low <= estimate.accuracy <= estimate.high and estimate.high - estimate.low > 0
    assert estimate.target_examples == len(moons.target_eval)
    x, y = (torch.stack([torch.as_tensor(np.asarray(item[i])) for item in moons.target_test]) for i in (0, 1))
    labeled = estimate_accuracy(trained, TensorDataset(x, y), moons.source_val, "atc_mc")
    relabeled = estimate_accuracy(trained, TensorDataset(x, torch.zeros_like(y)), moons.source_val, "atc_mc")
    assert (labeled.accuracy, labeled.low, labeled.high) == (relabeled.accuracy, relabeled.low, relabeled.high)
    point = estimate_accuracy(trained, moons.target_eval, moons.source_val, "atc_mc", bootstrap=0)
    assert point.low == point.high == estimate.accuracy
    assert "atc_mc" in str(estimate) and "interval" in str(estimate)


def test_few_examples_are_flagged(moons, trained):
    x = torch.stack([moons.target_eval[i][0] for i in range(30)])
    estimate = estimate_accuracy(trained, x, moons.source_val, "atc_mc")
    assert not estimate.trusted
    assert any("only 30 target examples" in w for w in estimate.warnings)
    assert any("wide" in w for w in estimate.warnings)


def test_agreement_with_itself_is_one_and_with_another_seed_below(moons, trained):
    assert agreement_rate(torch.eye(3), torch.eye(3)) == 1.0
    assert agreement_rate(torch.eye(3), torch.eye(3).flip(0)) == pytest.approx(1 / 3)
    other = fitted(moons, 300, seed=1)
    same = estimate_accuracy(trained, moons.target_eval, estimator="agreement", reference=trained)
    assert same.accuracy == 1.0
    assert estimate_accuracy(trained, moons.target_eval, estimator="agreement", reference=other).accuracy <= 1.0


def test_bad_requests_name_the_problem(moons, trained):
    with pytest.raises(ValueError, match=r"unknown accuracy estimator 'atc'.*atc_ne"):
        estimate_accuracy(trained, moons.target_eval, moons.source_val, "atc")
    with pytest.raises(ValueError, match="pass source_val"):
        estimate_accuracy(trained, moons.target_eval)
    with pytest.raises(ValueError, match="needs reference"):
        estimate_accuracy(trained, moons.target_eval, estimator="agreement")
    with pytest.raises(ValueError, match="margin"):
        guard(trained, trained, moons.target_eval, moons.source_val, margin=5)


def test_the_guard_keeps_the_source_only_model_when_adapting_hurt(moons, trained):
    """A barely trained model stands in for an adaptation that went wrong: the guard must notice it is worse,
    keep the source-only model, warn with both estimates and record the decision in its history."""
    hurt = fitted(moons, 3, seed=2)
    assert true_accuracy(hurt, moons) < true_accuracy(trained, moons) - 0.05
    with pytest.warns(UserWarning, match="negative transfer.*adapted model at 0\\.\\d+.*source-only model at"):
        decision = guard(hurt, trained, moons.target_eval, moons.source_val)
    assert decision.kept == "source_only" and decision.model is trained
    assert decision.adapted.accuracy < decision.source_only.accuracy
    assert hurt.history_.attrs["guard"]["kept"] == "source_only"


def test_the_guard_keeps_an_adapted_model_that_is_no_worse(moons, trained):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        decision = guard(trained, fitted(moons, 3, seed=2), moons.target_eval, moons.source_val)
    assert decision.kept == "adapted" and decision.model is trained
    assert trained.history_.attrs["guard"]["kept"] == "adapted"


def test_a_source_free_estimate_calibrates_on_the_source_models_outputs(moons, trained):
    """Source-free: the provider computes its model's source calibration once; an estimate of *another*
    model (the adapted one) calibrates on it, never running that model on source data. On the source model
    itself it is the ordinary estimate; for DoC the calibration term is the source model's, whatever is scored."""
    from adapt.estimate import source_calibration

    calibration = source_calibration(trained, moons.source_val)
    own = estimate_accuracy(trained, moons.target_eval, moons.source_val, "doc", bootstrap=0)
    carried = estimate_accuracy(trained, moons.target_eval, estimator="doc", bootstrap=0,
                                source_calibration=calibration)  # fmt: skip
    assert carried.accuracy == pytest.approx(own.accuracy)
    adapted = fitted(moons, 30, seed=3)  # another model stands in for the adapted one
    confidence = estimate_accuracy(adapted, moons.target_eval, estimator="avg_confidence", bootstrap=0).accuracy
    doc = estimate_accuracy(adapted, moons.target_eval, estimator="doc", bootstrap=0, source_calibration=calibration)
    source_probs = torch.softmax(calibration[0].double(), 1)
    offset = float((source_probs.argmax(1) == calibration[1]).double().mean() - source_probs.max(1).values.mean())
    assert doc.accuracy == pytest.approx(confidence + offset)
    with pytest.raises(ValueError, match="not both"):
        estimate_accuracy(adapted, moons.target_eval, moons.source_val, source_calibration=calibration)
