"""Label-free (or source-label) model scores, as pure functions of outputs. Higher is better."""

from __future__ import annotations

import numpy as np
import torch

from ..losses import bnm_loss, diversity_loss, entropy


def prediction_accuracy(
    predictions: torch.Tensor, labels: torch.Tensor, classes: list[str] | None = None
) -> tuple[float, dict[str, float]]:
    """Accuracy of predicted class indices, and per class (by name, for the classes present).

    The one place accuracy is computed: :meth:`Adapter.score`, the harness records and
    :func:`accuracy_score` all use it.

    >>> prediction_accuracy(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), ["a", "b", "c"])
    (0.75, {'a': 1.0, 'b': 1.0, 'c': 0.5})
    """
    predictions, labels = predictions.cpu(), labels.cpu()
    correct = (predictions == labels).float()
    per_class = {
        name: float(correct[labels == c].mean()) for c, name in enumerate(classes or []) if (labels == c).any()
    }
    return float(correct.mean()), per_class


def accuracy_score(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy of ``logits.argmax(1)`` against ``labels`` (for held-out *source* data)."""
    return prediction_accuracy(logits.argmax(1), labels)[0]


def entropy_score(logits: torch.Tensor) -> float:
    """Negative mean prediction entropy (Morerio et al., ICLR 2018 'minimal-entropy correlation
    alignment' select by target entropy); confident models score higher."""
    return -float(entropy(logits))


def im_score(logits: torch.Tensor) -> float:
    """Information maximization: :math:`H(\\bar p) - \\frac1N\\sum_i H(p_i)` (diversity minus entropy;
    Gomes et al., NeurIPS 2010; used as a validator by Musgrave et al., ECCV 2022)."""
    return -float(diversity_loss(logits)) - float(entropy(logits))


def bnm_score(logits: torch.Tensor) -> float:
    """Batch nuclear norm :math:`\\lVert \\mathrm{softmax}(Z) \\rVert_* / N` over all target examples
    (Cui et al., CVPR 2020; as a validator: Musgrave et al., ECCV 2022)."""
    return -float(bnm_loss(logits))


#: Beyond this many target examples SND averages over a uniform sample of this many rows (each against
#: every example): its cost grows as rows x examples, so a DomainNet-sized target (200k) costs what 4k do x 50.
SND_MAX_ROWS = 4096
#: Elements of one block of similarities (rows x examples): 64 MiB of float32, whatever the target's size
#: (and at most 1024 rows, the block every SND score up to 0.3.0 was summed in, so that none moves).
SND_BLOCK = 2**24


def snd_score(logits: torch.Tensor, temperature: float = 0.05, max_rows: int | None = SND_MAX_ROWS,
              seed: int = 0) -> float:  # fmt: skip
    """Soft neighborhood density (Saito et al., "Tune it the Right Way", ICCV 2021, Eq. 3-4).

    Cosine similarities between the L2-normalized softmax outputs of all target examples (self
    excluded), a softmax over each row with temperature 0.05, and the mean entropy of those rows:
    a dense, well-clustered target gives high entropy.

    Cost: the exact score is O(n^2) time for n examples. With more than ``max_rows`` examples the mean
    runs over ``max_rows`` rows drawn uniformly without replacement (``seed``), each still against all n
    examples: an unbiased estimate of the same Eq. 4 at O(max_rows * n) time (``max_rows=None``: exact).
    Memory stays O(n) plus one block of :data:`SND_BLOCK` similarities.
    """
    probs = torch.softmax(logits.float(), dim=1)
    normed = torch.nn.functional.normalize(probs, dim=1)
    n = normed.shape[0]
    if n < 2:
        raise ValueError("SND needs at least 2 target examples")
    rows = torch.arange(n)
    if max_rows is not None and n > max_rows:
        rows = torch.from_numpy(np.sort(np.random.default_rng(seed).choice(n, max_rows, replace=False)))
    block = max(1, min(1024, SND_BLOCK // n))
    total = 0.0
    for start in range(0, len(rows), block):
        chosen = rows[start : start + block]
        sim = normed[chosen] @ normed.t()
        sim[torch.arange(len(chosen)), chosen] = -float("inf")  # exclude each example's similarity to itself
        total += float(entropy(sim / temperature, reduction="sum"))
    return total / len(rows)


def class_ami_score(features: torch.Tensor, logits: torch.Tensor) -> float:
    """ClassAMI (Musgrave et al., "Three New Validators and a Large-Scale Benchmark Ranking for
    Unsupervised Domain Adaptation", 2022), as their benchmark's tables compute it
    (``ClassAMICentroidInit_layer_features_normalize_True_p_2.0``, KevinMusgrave/powerful-benchmarker at
    commit 009150a, ``validator_tests/configs/cluster_config.py`` lines 41-100, and pytorch-adapt 0.0.83's
    ``ClassClusterValidator``): the target features are L2-normalized, k-means with k = the number of
    classes starts from the centroid of each predicted class (a zero vector for a class nobody is predicted
    as) and runs once from there, and the score is the adjusted mutual information between the clusters
    and the predicted classes. Deterministic: no random initialization."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_mutual_info_score

    k = logits.shape[1]
    x = torch.nn.functional.normalize(features.float(), dim=1, p=2).numpy()
    if len(x) < k:
        raise ValueError(f"ClassAMI needs at least {k} target examples (one per class), got {len(x)}")
    predicted = logits.argmax(1).numpy()
    centroids = np.zeros((k, x.shape[1]))
    for c in range(k):
        if (predicted == c).any():
            centroids[c] = x[predicted == c].mean(0)
    clusters = KMeans(n_clusters=k, init=centroids, n_init=1).fit(x).labels_
    return float(adjusted_mutual_info_score(predicted, clusters))


def dev_risk(weights: np.ndarray, losses: np.ndarray, normalization: str | None = None) -> float:
    """Deep embedded validation risk (You et al., ICML 2019, Algorithm 1).

    Importance-weighted source-validation loss with the control variate
    :math:`\\eta = -\\mathrm{Cov}(wl, w)/\\mathrm{Var}(w)`:
    :math:`\\frac1n\\sum w_i l_i + \\eta \\frac1n\\sum w_i - \\eta`. ``normalization='max'`` is DEVN
    (Musgrave et al., ECCV 2022): weights divided by their maximum, then shifted to mean 1.
    """
    w = np.asarray(weights, dtype=np.float64).reshape(-1).copy()
    loss = np.asarray(losses, dtype=np.float64).reshape(-1)
    if normalization == "max":
        w /= w.max()
        w -= w.mean() - 1
    elif normalization is not None:
        raise ValueError(f"normalization must be None or 'max', got {normalization!r}")
    weighted = w * loss
    var_w = np.var(w, ddof=1)
    eta = 0.0 if var_w == 0 else -np.cov(weighted, w)[0, 1] / var_w
    return float(np.mean(weighted) + eta * np.mean(w) - eta)


def domain_importance_weights(
    source_train_features: torch.Tensor, source_val_features: torch.Tensor, target_features: torch.Tensor, seed: int = 0
) -> np.ndarray:
    """Density ratios :math:`w(x) = \\frac{n_s}{n_t}\\frac{p(\\text{target}|x)}{p(\\text{source}|x)}` for
    the source-validation examples, from a logistic-regression domain classifier fitted on source
    (training) versus target features (You et al. fit an MLP; a linear model is cheaper and
    deterministic)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    xs, xv, xt = (f.float().numpy() for f in (source_train_features, source_val_features, target_features))
    scaler = StandardScaler().fit(np.concatenate([xs, xt]))
    x = scaler.transform(np.concatenate([xs, xt]))
    y = np.concatenate([np.zeros(len(xs)), np.ones(len(xt))])
    clf = LogisticRegression(max_iter=1000, random_state=seed).fit(x, y)
    p_target = np.clip(clf.predict_proba(scaler.transform(xv))[:, 1], 1e-6, 1 - 1e-6)
    return (len(xs) / len(xt)) * p_target / (1 - p_target)


def reverse_validation_score(
    target_features: torch.Tensor,
    target_logits: torch.Tensor,
    source_val_features: torch.Tensor,
    source_val_labels: torch.Tensor,
    seed: int = 0,
) -> float:
    """Reverse (circular) validation (Zhong et al., ECML 2010; Ganin et al., JMLR 2016, Sec. 5.1.2).

    Pseudo-label the target with the model, train a classifier back on the pseudo-labeled target
    features, and score it on the labeled source-validation features. Here the reverse classifier
    is a logistic regression on the model's own features (the original retrains the whole network:
    far more expensive).
    """
    from sklearn.linear_model import LogisticRegression

    pseudo = target_logits.argmax(1).numpy()
    if len(np.unique(pseudo)) < 2:
        return 0.0  # one predicted class: the reverse classifier cannot be trained
    clf = LogisticRegression(max_iter=1000, random_state=seed).fit(target_features.float().numpy(), pseudo)
    return float((clf.predict(source_val_features.float().numpy()) == source_val_labels.numpy()).mean())
