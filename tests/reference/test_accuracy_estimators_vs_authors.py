"""ATC and DoC against the ATC authors' code (numpy only: nothing to skip).

saurabhgarg1996/ATC_code at commit 6f1e336 (6f1e336509893f2a8e3df09198bcefccabb4d811):
``ATC_helper.py`` lines 3-34 (``get_entropy``, ``get_max_conf``, ``find_ATC_threshold``, ``get_ATC_acc``)
and ``predict_acc_helper.py`` lines 28-29 (``get_doc``), transcribed below; ``get_acc.py`` lines 85-134
is how they are called: the threshold from the source-validation scores and correctness, the estimate
from the target scores, DoC as ``source accuracy + get_doc(source max-probs, target max-probs)``, in %.

That script fits a temperature scaling but never applies it (line 85: ``softmax(inverse_softmax(probs))``
is ``probs`` again), so its estimates are on the raw softmax, as the library's are.

The library departs in one case, shown by the last test: a model that makes no error on the held-out
source gets the authors' threshold 0.0, so ATC-NE (negative entropy is <= 0) estimates about 0%; the
library takes the lowest source score instead.
"""

import numpy as np
import pytest
import torch

from adapt.validators import ModelOutputs, create_validator
from adapt.validators.accuracy import atc_threshold


def get_entropy(probs):
    return np.sum(np.multiply(probs, np.log(probs + 1e-20)), axis=1)


def get_max_conf(probs):
    return np.max(probs, axis=-1)


def find_ATC_threshold(scores, labels):
    sorted_idx = np.argsort(scores)

    sorted_scores = scores[sorted_idx]
    sorted_labels = labels[sorted_idx]

    fp = np.sum(labels == 0)
    fn = 0.0

    min_fp_fn = np.abs(fp - fn)
    thres = 0.0
    for i in range(len(labels)):
        if sorted_labels[i] == 0:
            fp -= 1
        else:
            fn += 1

        if np.abs(fp - fn) < min_fp_fn:
            min_fp_fn = np.abs(fp - fn)
            thres = sorted_scores[i]

    return min_fp_fn, thres


def get_ATC_acc(thres, scores):
    return np.mean(scores >= thres) * 100.0


def get_doc(probs1, probs2):
    return np.mean(probs2) - np.mean(probs1)


def authors_estimates(source_probs, source_labels, target_probs):
    """get_acc.py lines 85-134 without the dataset loop: ATC-MC, ATC-NE and DoC, in %."""
    pred_idx = np.argmax(source_probs, axis=-1)
    pred_probs = np.max(source_probs, axis=-1)
    source_acc = np.mean(pred_idx == source_labels) * 100.0
    _, entropy_thres = find_ATC_threshold(get_entropy(source_probs), pred_idx == source_labels)
    _, thres = find_ATC_threshold(pred_probs, pred_idx == source_labels)
    return {
        "atc_mc": get_ATC_acc(thres, get_max_conf(target_probs)),
        "atc_ne": get_ATC_acc(entropy_thres, get_entropy(target_probs)),
        "doc": source_acc + get_doc(pred_probs, get_max_conf(target_probs)) * 100.0,
    }


def shifted_outputs(seed, source_errors=True):
    """Source-validation and target logits of a 5-class model; the target less confident and less accurate."""
    rng = np.random.default_rng(seed)
    n, k = 400, 5
    labels = rng.integers(0, k, n)
    source = rng.normal(size=(n, k))
    source[np.arange(n), labels] += 3.0 if source_errors else 7.0
    target_labels = rng.integers(0, k, 2 * n)
    target = rng.normal(size=(2 * n, k)) * 1.3
    target[np.arange(2 * n), target_labels] += 1.5
    return ModelOutputs(torch.tensor(target), torch.zeros(2 * n, 1), torch.tensor(source), None, torch.tensor(labels))


def probs(logits):
    return torch.softmax(logits.double(), dim=1).numpy()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", ["atc_mc", "atc_ne", "doc"])
def test_estimates_are_the_authors(seed, name):
    outputs = shifted_outputs(seed)
    theirs = authors_estimates(probs(outputs.source_val_logits), outputs.source_val_labels.numpy(),
                               probs(outputs.target_logits))[name]  # fmt: skip
    ours = 100 * create_validator(name).score(outputs)
    assert ours == pytest.approx(theirs, abs=1e-9)
    assert 20 < ours < 95  # a real shift, not a degenerate case


@pytest.mark.parametrize("seed", [0, 1])
def test_threshold_is_the_authors_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 20, 300) / 20.0  # many ties
    correct = rng.random(300) < 0.7
    assert atc_threshold(scores, correct) == find_ATC_threshold(scores, correct)[1]


def test_without_source_errors_the_library_departs_from_the_authors():
    outputs = shifted_outputs(0, source_errors=False)
    source = probs(outputs.source_val_logits)
    assert (source.argmax(1) == outputs.source_val_labels.numpy()).all()
    theirs = authors_estimates(source, outputs.source_val_labels.numpy(), probs(outputs.target_logits))["atc_ne"]
    ours = 100 * create_validator("atc_ne").score(outputs)
    assert theirs < 1.0  # threshold 0.0: no target example has zero entropy
    assert ours > 1.0 and ours == pytest.approx(100 * np.mean(get_entropy(probs(outputs.target_logits))
                                                               >= get_entropy(source).min()))  # fmt: skip
