"""LAME against a transcription of the authors' code, on an i.i.d. and a label-sorted stream."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from tta_models import cnn_stream

from adapt.errors import InputError
from adapt.testtime import LAME, TENT, evaluate_stream
from adapt.testtime.streams import StreamConfig, stream_order


class kNN_affinity:
    """Transcription of fiveai/LAME at d2e5f63, ``src/adaptation/lame.py`` lines 32-46."""

    def __init__(self, knn: int, **kwargs):
        self.knn = knn

    def __call__(self, X):
        N = X.size(0)
        dist = torch.norm(X.unsqueeze(0) - X.unsqueeze(1), dim=-1, p=2)
        n_neighbors = min(self.knn + 1, N)
        knn_index = dist.topk(n_neighbors, -1, largest=False).indices[:, 1:]
        W = torch.zeros(N, N, device=X.device)
        W.scatter_(dim=-1, index=knn_index, value=1.0)
        return W


class rbf_affinity:
    """Transcription of fiveai/LAME at d2e5f63, ``src/adaptation/lame.py`` lines 49-64."""

    def __init__(self, sigma: float, **kwargs):
        self.sigma = sigma
        self.k = kwargs["knn"]

    def __call__(self, X):
        N = X.size(0)
        dist = torch.norm(X.unsqueeze(0) - X.unsqueeze(1), dim=-1, p=2)
        n_neighbors = min(self.k, N)
        kth_dist = dist.topk(k=n_neighbors, dim=-1, largest=False).values[:, -1]
        sigma = kth_dist.mean()
        rbf = torch.exp(-(dist**2) / (2 * sigma**2))
        return rbf


class linear_affinity:
    """Transcription of fiveai/LAME at d2e5f63, ``src/adaptation/lame.py`` lines 67-73."""

    def __init__(self, **kwargs):
        pass

    def __call__(self, X):
        return torch.matmul(X, X.t())


def laplacian_optimization(unary, kernel, bound_lambda=1, max_steps=100):
    """Transcription of fiveai/LAME at d2e5f63, ``src/adaptation/lame.py`` lines 125-143."""
    E_list = []
    oldE = float("inf")
    Y = (-unary).softmax(-1)
    for i in range(max_steps):
        pairwise = bound_lambda * kernel.matmul(Y)
        exponent = -unary + pairwise
        Y = exponent.softmax(-1)
        E = entropy_energy(Y, unary, pairwise, bound_lambda).item()
        E_list.append(E)
        if i > 1 and (abs(E - oldE) <= 1e-8 * abs(oldE)):
            break
        else:
            oldE = E
    return Y


def entropy_energy(Y, unary, pairwise, bound_lambda):
    """Transcription of fiveai/LAME at d2e5f63, ``src/adaptation/lame.py`` lines 146-148."""
    E = (unary * Y - bound_lambda * pairwise * Y + Y * torch.log(Y.clip(1e-20))).sum()
    return E


@torch.no_grad()
def their_run_step(model: nn.Sequential, x, affinity="rbf", knn=5, sigma=1.0, force_symmetry=False):
    """Transcription of ``LAME.run_step`` (fiveai/LAME at d2e5f63, ``src/adaptation/lame.py`` lines 86-116), the
    backbone's output being the Sequential's last input; defaults from the reference benchmark's ``conf.py``
    (mariodoebler/test-time-adaptation at 8b2ed63, lines 209-215)."""
    kernel_of = {"knn": kNN_affinity, "rbf": rbf_affinity, "linear": linear_affinity}[affinity](sigma=sigma, knn=knn)
    feats = model[:-1](x)
    probas = model[-1](feats).softmax(1)
    unary = -torch.log(probas + 1e-10)
    feats = F.normalize(feats, p=2, dim=-1)
    kernel = kernel_of(feats)
    if force_symmetry:
        kernel = 1 / 2 * (kernel + kernel.t())
    return laplacian_optimization(unary, kernel)


@pytest.mark.parametrize("affinity, knn, symmetric", [("rbf", 5, False), ("knn", 3, False), ("knn", 3, True),
                                                      ("linear", 5, False)])  # fmt: skip
def test_lame_matches_the_authors_run_step(cnn_model, affinity, knn, symmetric):
    lame = LAME(cnn_model, affinity=affinity, knn=knn, force_symmetry=symmetric)
    for batch in cnn_stream().split(64):
        theirs = their_run_step(cnn_model.eval(), batch, affinity, knn, force_symmetry=symmetric)
        torch.testing.assert_close(lame.predict_logits(batch).exp(), theirs)
    assert all(torch.equal(p, q) for p, q in zip(lame.model.parameters(), cnn_model.parameters()))


def test_on_a_label_sorted_stream_tent_collapses_and_lame_does_not(source_model):
    # the reference benchmark's "correlated" finding, on the source blobs drawn wider (the source model: 83%)
    g = torch.Generator().manual_seed(7)
    y = torch.arange(600) % 3
    x = torch.tensor([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]])[y] + 2.2 * torch.randn(600, 2, generator=g)
    accuracy = {}
    for order in ("shuffled", "correlated"):
        index = torch.as_tensor(stream_order(y.numpy(), StreamConfig(order=order), seed=0))
        xs, ys = x[index], y[index]
        unadapted = (source_model(xs).argmax(1) == ys).float().mean().item()
        accuracy[order] = {"source": unadapted, **{name: evaluate_stream(cls(source_model), xs, ys)["online_accuracy"]
                                                  for name, cls in (("tent", TENT), ("lame", LAME))}}  # fmt: skip
    shuffled, sorted_ = accuracy["shuffled"], accuracy["correlated"]
    assert abs(shuffled["tent"] - shuffled["source"]) < 0.02 and abs(shuffled["lame"] - shuffled["source"]) < 0.02
    assert sorted_["tent"] < sorted_["source"] - 0.3  # batch statistics of one class erase the class
    assert sorted_["lame"] >= sorted_["source"]  # the model is untouched; neighbours agree within a class


@pytest.mark.bad_input
def test_lame_needs_the_models_features():
    class Opaque(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(2, 3)

        def forward(self, x):
            return self.net(x)

    with pytest.raises(InputError, match="LAME needs the model's features"):
        LAME(Opaque())
    with pytest.raises(ValueError, match="knn must be a positive integer"):
        LAME(nn.Sequential(nn.Linear(2, 4), nn.Linear(4, 3)), knn=0)


def test_lame_reads_this_librarys_models():
    from adapt.methods import create
    from adapt.models.digits import MLP

    x, y = torch.randn(64, 2), torch.arange(64) % 3
    model = create("source_only", MLP(in_features=2, hidden=(8,)), num_classes=3, bottleneck_dim=4)
    model.fit((x, y), x, steps=2, batch_size=32, verbose=False)
    out = LAME(model).predict_logits(torch.randn(32, 2))
    assert out.shape == (32, 3) and np.allclose(out.exp().sum(1), 1, atol=1e-5)
