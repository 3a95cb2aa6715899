"""adapt.sklearn: scikit-learn's estimator checks, SKADA's sample_domain convention, pipelines and a
GridSearchCV scored by a label-free validator."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from adapt.data import task
from adapt.sklearn import DomainAdaptationClassifier, split_domains, validator_scorer


@pytest.fixture(scope="module")
def moons():
    t = task("moons", "source", "rotated")
    (xs, ys), (xt,) = t.source_train.tensors, t.target_train.tensors
    yt = t.target_test.tensors[1].numpy()
    X = np.concatenate([xs.numpy(), xt.numpy()])
    domain = np.r_[np.ones(len(xs), int), -np.ones(len(xt), int)]
    return X, np.r_[ys.numpy(), yt], domain, yt


def test_scikit_learn_estimator_checks():
    clf = DomainAdaptationClassifier("dann", hidden=(16,), max_steps=150, batch_size=32, lr=0.05)
    reason = "y == -1 marks an unlabeled target sample (SKADA's convention, as for scikit-learn's LabelSpreading)"
    check_estimator(clf, expected_failed_checks={"check_classifiers_classes": reason})


@pytest.mark.bad_input
def test_one_source_sample_is_refused_by_name():
    with pytest.raises(ValueError, match="at least 2 labeled source samples; got 1 sample"):
        DomainAdaptationClassifier("dann").fit(np.ones((1, 3)), np.array([0]))


def test_sample_domain_and_masked_labels_are_the_same_and_target_labels_are_never_read(moons):
    X, y, domain, yt = moons
    clf = DomainAdaptationClassifier("dann", hidden=(32,), max_steps=200)
    by_domain = clf.fit(X, y, sample_domain=domain).predict_proba(X)
    garbage = np.where(domain > 0, y, 7)  # target labels that would break training if they were read
    assert np.array_equal(clone(clf).fit(X, garbage, sample_domain=domain).predict_proba(X), by_domain)
    masked = np.where(domain > 0, y, -1)
    assert np.array_equal(clone(clf).fit(X, masked).predict_proba(X), by_domain)
    target_accuracy = (clf.predict(X[domain < 0]) == yt).mean()
    assert target_accuracy > 0.6 and list(clf.classes_) == [0, 1]


def test_pipeline_and_string_labels(moons):
    X, y, domain, _ = moons
    names = np.array(["left", "right"])[y]
    pipe = make_pipeline(StandardScaler(), DomainAdaptationClassifier("coral", hidden=(16,), max_steps=50))
    pipe.fit(X, names, domainadaptationclassifier__sample_domain=domain)
    assert set(pipe.predict(X)) <= {"left", "right"}
    pipe.fit(X[domain > 0], names[domain > 0])  # no target rows: a plain classifier
    assert set(pipe.predict(X)) <= {"left", "right"}


def test_grid_search_with_a_label_free_validator_scorer(moons):
    X, y, domain, _ = moons
    masked = np.where(domain > 0, y, -1)  # what GridSearchCV sees: target labels masked
    search = GridSearchCV(
        DomainAdaptationClassifier("dann", hidden=(16,), max_steps=60),
        {"method_params": [{"trade_off": 0.1}, {"trade_off": 1.0}]},
        scoring=validator_scorer("im"),
        cv=KFold(2, shuffle=True, random_state=0),  # folds mix source and target rows
    )
    search.fit(X, masked)
    assert search.best_params_["method_params"] in ({"trade_off": 0.1}, {"trade_off": 1.0})
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


@pytest.mark.bad_input
def test_bad_inputs_get_clear_errors(moons):
    X, y, domain, _ = moons
    with pytest.raises(ValueError, match="needs labeled source data"):
        validator_scorer("source_accuracy")
    with pytest.raises(ValueError, match=r"positive \(source\) or negative \(target\), not 0"):
        split_domains(X, y, np.zeros(len(X)))
    with pytest.raises(ValueError, match="one entry per sample"):
        split_domains(X, y, domain[:5])
    with pytest.raises(ValueError, match="no source sample"):
        DomainAdaptationClassifier(max_steps=2).fit(X, -np.ones(len(X), int))
