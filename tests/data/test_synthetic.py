"""The synthetic benchmarks: the optdigits shift zoo."""

import numpy as np
import pytest
import torch

from adapt.data import task
from adapt.data.synthetic import OPTDIGITS_SHIFTS


@pytest.mark.parametrize("kind", OPTDIGITS_SHIFTS[1:])
def test_optdigits_shifts_are_disjoint_shifted_halves(kind):
    t = task("optdigits-shifts", "clean", kind)
    xs, xt = t.source_train.tensors[0], t.target_train.tensors[0]
    assert xs.shape[1:] == xt.shape[1:] == (1, 16, 16) and t.num_classes == 10
    assert float(xs.min()) >= -1 and float(xs.max()) <= 1 and float(xt.min()) >= -1 and float(xt.max()) <= 1
    same = task("optdigits-shifts", "clean", kind)
    assert torch.equal(xt, same.target_train.tensors[0])  # generated from the seed, deterministic
    labels = t.target_test.tensors[1].numpy()
    counts = np.bincount(labels, minlength=10)
    if kind == "imbalanced":  # a pure label shift: class proportions fall as 0.7^c
        assert counts[0] > 5 * counts[9] and len(labels) < 0.5 * len(xs)
    elif kind == "minority":  # a step label shift: classes 5-9 at a fifth
        assert counts[:5].min() > 3 * counts[5:].max() and len(labels) < 0.7 * len(xs)
    else:  # every other shift keeps the balanced half and changes the images
        assert counts.min() > 0.8 * counts.max()
        clean = task("optdigits-shifts", "clean", "imbalanced").target_train.tensors[0]
        assert not torch.equal(xt[: len(clean)], clean)
