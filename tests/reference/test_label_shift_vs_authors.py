"""The label-shift weights against the IWDAN authors' QP; skipped without cvxopt (the dev extra has it).

microsoft/Domain-Adaptation-with-Conditional-Distribution-Matching-and-Generalized-Label-Shift at commit
cfdf6ab, ``network.py`` lines 503-531 (``im_weights_update``), transcribed below as ``authors_weights``:
it solves its QP with cvxopt and moves the weights with a moving average of coefficient ``ma``.
"""

import numpy as np
import pytest

pytest.importorskip("cvxopt")

import torch
from cvxopt import matrix, solvers

from adapt.losses.label_shift import label_shift_weights
from adapt.models.label_shift import ClassImportanceWeights

solvers.options["show_progress"] = False


def authors_weights(source_y, target_y, cov, im_weights, ma):
    """``im_weights_update`` of network.py (cfdf6ab), lines 513-529, on numpy arrays."""
    dim = cov.shape[0]
    source_y = source_y.reshape(-1, 1).astype(np.double)
    target_y = target_y.reshape(-1, 1).astype(np.double)
    cov = cov.astype(np.double)

    P = matrix(np.dot(cov.T, cov), tc="d")
    q = -matrix(np.dot(cov, target_y), tc="d")
    G = matrix(-np.eye(dim), tc="d")
    h = matrix(np.zeros(dim), tc="d")
    A = matrix(source_y.reshape(1, -1), tc="d")
    b = matrix([1.0], tc="d")
    sol = solvers.qp(P, q, G, h, A, b)
    new_im_weights = np.array(sol["x"])
    return (1 - ma) * new_im_weights[:, 0] + ma * im_weights


def symmetric_case(seed):
    rng = np.random.default_rng(seed)
    k = 5
    p_s = np.full(k, 1 / k)
    off = rng.random((k, k)) * 0.02
    cov = np.diag(p_s * 0.9) + (off + off.T) / 2  # symmetric: the authors' q equals -C^T mu
    cov = cov / cov.sum()
    p_s = cov.sum(0)
    w = rng.random(k) * 2
    w = w / (w @ p_s)
    return cov, cov @ w, p_s


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_qp_solution_is_the_authors_where_their_linear_term_agrees(seed):
    cov, mu, p_s = symmetric_case(seed)
    theirs = authors_weights(p_s, mu, cov, np.ones(len(p_s)), ma=0.0)
    ours = label_shift_weights(torch.tensor(cov), torch.tensor(mu), torch.tensor(p_s)).double().numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_where_the_confusion_is_not_symmetric_only_ours_recovers_the_weights():
    """The authors pass q = -C mu; the objective ||Cw - mu||^2 has -C^T mu. The library's docstring says so."""
    k = 4
    p_s = np.full(k, 1 / k)
    cov = np.diag(p_s * 0.6)
    cov[0, 1:] = p_s[1:] * 0.4  # every mistake predicts class 0: C far from symmetric
    w = np.array([0.2, 0.8, 1.4, 1.6])
    w = w / (w @ p_s)
    mu = cov @ w
    theirs = authors_weights(p_s, mu, cov, np.ones(k), ma=0.0)
    ours = label_shift_weights(torch.tensor(cov), torch.tensor(mu), torch.tensor(p_s)).double().numpy()
    np.testing.assert_allclose(ours, w, atol=1e-4)
    assert np.abs(theirs - w).max() > 0.1


def test_the_running_estimate_follows_the_authors_moving_average():
    """train_digits.py (cfdf6ab) lines 66-71 and 121-128: sums of target softmax and of source
    softmax-outer-one-hot over a period, normalized, then the QP and ``ma``; here a period is
    ``update_every`` steps, with a symmetric confusion so that the two linear terms agree."""
    torch.manual_seed(0)
    k, ma = 3, 0.5
    estimator = ClassImportanceWeights(k, update_every=2, momentum=ma)
    expected = np.ones(k)
    for period in range(2):
        cov, pseudo, counts = np.zeros((k, k)), np.zeros(k), np.zeros(k)
        for step in range(2 * period, 2 * period + 2):
            ys = torch.arange(k).repeat(4)
            source_logits = 6 * torch.nn.functional.one_hot(ys, k).float()  # confident and right: C diagonal
            target_logits = torch.randn(10, k)
            estimator.observe(source_logits, ys, target_logits)
            cov += (source_logits.softmax(1).t() @ torch.nn.functional.one_hot(ys, k).double().float()).numpy()
            pseudo += target_logits.softmax(1).sum(0).numpy()
            counts += np.bincount(ys.numpy(), minlength=k)
            estimator.step(step)
        n = counts.sum()
        expected = authors_weights(counts / n, pseudo / pseudo.sum(), cov / n, expected, ma)
        np.testing.assert_allclose(estimator.weights.numpy(), expected, atol=1e-4)
