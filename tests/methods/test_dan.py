"""DAN: its MMD against TLlib's multiple-kernel MMD and its presets."""

import numpy as np
import pytest
import torch
from torch import nn

from adapt import methods
from adapt.batch import Batch
from adapt.losses import mmd


def tllib_mkmmd(zs: np.ndarray, zt: np.ndarray, linear: bool) -> float:
    """Transcription of ``MultipleKernelMaximumMeanDiscrepancy`` (thuml/Transfer-Learning-Library at commit
    c4aa59e, ``tllib/alignment/dan.py``: ``forward`` lines 78-89, ``_update_index_matrix`` lines 92-119) with
    ``GaussianKernel(alpha=2 ** k)``, k = -3..1 (``tllib/modules/kernels.py``, ``forward`` lines 56-62; the
    kernels of ``examples/domain_adaptation/image_classification/dan.py`` lines 82-85)."""
    b = len(zs)
    feats = np.concatenate([zs, zt])
    d2 = ((feats[None, :, :] - feats[:, None, :]) ** 2).sum(-1)
    kernel = sum(np.exp(-d2 / (2 * (2.0**k) * d2.mean())) for k in range(-3, 2))
    index = np.zeros((2 * b, 2 * b))
    if linear:
        for i in range(b):
            s1, s2 = i, (i + 1) % b
            t1, t2 = s1 + b, s2 + b
            index[s1, s2] = 1 / b
            index[t1, t2] = 1 / b
            index[s1, t2] = -1 / b
            index[s2, t1] = -1 / b
    else:
        for i in range(b):
            for j in range(b):
                if i != j:
                    index[i, j] = index[i + b, j + b] = 1 / (b * (b - 1))
                index[i, j + b] = index[i + b, j] = -1 / (b * b)
    return float((kernel * index).sum() + 2 / (b - 1))


def _features(n=16, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randn(n, d, generator=g) * 1.3 + 0.4


@pytest.mark.parametrize("linear", [True, False])
def test_tllib_mkmmd_transcription_matches_mmd_options(linear):
    zs, zt = _features()
    expected = tllib_mkmmd(zs.double().numpy(), zt.double().numpy(), linear)
    ours = mmd(zs, zt, multipliers=(0.25, 0.5, 1, 2, 4), bandwidth="mean_all_pairs", kernel_sum=True,
               estimator="cyclic" if linear else "unbiased")  # fmt: skip
    b = len(zs)
    assert float(ours) + 2 / (b - 1) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_dan_tllib_preset_is_tllibs_linear_mkmmd_on_the_features():
    torch.manual_seed(0)
    model = methods.create("dan", nn.Linear(5, 6), num_classes=3, preset="tllib")
    xs, xt = torch.randn(16, 5), torch.randn(16, 5) + 0.5
    model.build(xs)
    terms = model.loss(Batch(xs, torch.randint(0, 3, (16,)), xt), 0.3)
    with torch.no_grad():
        fs, ft = model.embed(xs).double().numpy(), model.embed(xt).double().numpy()
    expected = tllib_mkmmd(fs, ft, linear=True) - 2 / (16 - 1)
    assert float(terms["mmd"].detach()) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_dan_default_averages_kernels_so_tllib_sum_is_five_times_larger_at_equal_bandwidth():
    zs, zt = _features()
    opts = dict(multipliers=(0.25, 0.5, 1, 2, 4), bandwidth="mean_all_pairs", estimator="unbiased")
    assert float(mmd(zs, zt, kernel_sum=True, **opts)) == pytest.approx(5 * float(mmd(zs, zt, **opts)), rel=1e-5)
