"""Printed digits and dead-leaves backgrounds (adapt/data/rendered.py) and the benchmarks built on them."""

from __future__ import annotations

import numpy as np
import pytest

from adapt import data
from adapt.data import rendered
from adapt.data.synthetic import _optdigits


def test_printed_digits_are_balanced_seeded_and_in_range():
    a, ya = rendered.printed_digits("serif", 5, np.random.default_rng(0))
    b, _ = rendered.printed_digits("serif", 5, np.random.default_rng(0))
    c, _ = rendered.printed_digits("serif", 5, np.random.default_rng(1))
    assert a.shape == (50, 1, 16, 16) and a.dtype == np.float32
    assert np.bincount(ya).tolist() == [5] * 10
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.min() >= 0 and np.allclose(a.max(axis=(1, 2, 3)), 1.0)  # white strokes on black
    assert 0.05 < a.mean() < 0.5


def test_printed_digits_carry_their_labels_to_handwriting():
    """A nearest-centroid classifier fit on printed digits reads the handwritten UCI digits well above
    chance (the label is in the glyph); with the printed labels shuffled it falls to chance."""
    x, y = rendered.printed_digits("sans", 30, np.random.default_rng(0))
    uci, uci_y = _optdigits(0)

    def accuracy(labels: np.ndarray) -> float:
        centroids = np.stack([x[labels == c].reshape(-1, 256).mean(0) for c in range(10)])
        distances = ((uci.reshape(-1, 1, 256) - centroids[None]) ** 2).sum(-1)
        return float((distances.argmin(1) == uci_y).mean())

    assert accuracy(y) > 0.35
    assert accuracy(np.random.default_rng(0).permutation(y)) < 0.2


def test_font_families_differ():
    sans, _ = rendered.printed_digits("sans", 20, np.random.default_rng(0))
    serif, _ = rendered.printed_digits("serif", 20, np.random.default_rng(0))
    assert np.abs(sans.mean(0) - serif.mean(0)).max() > 0.05


def test_unknown_font_family_is_named():
    with pytest.raises(ValueError, match="unknown font family 'gothic'; choose one of sans, serif"):
        rendered.font_files("gothic")


def test_missing_matplotlib_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ModuleNotFoundError
    with pytest.raises(ModuleNotFoundError, match=r"printed digits needs matplotlib.*adapt-uda\[bench\]"):
        rendered.font_files("sans")


def test_dead_leaves_are_smooth_colour_regions_not_noise():
    leaves = rendered.dead_leaves(64, np.random.default_rng(0))
    assert leaves.shape == (64, 3, 16, 16) and leaves.min() >= 0 and leaves.max() <= 1
    assert np.array_equal(leaves, rendered.dead_leaves(64, np.random.default_rng(0)))

    def neighbour_correlation(x: np.ndarray) -> float:
        return float(np.corrcoef(x[..., :, :-1].ravel(), x[..., :, 1:].ravel())[0, 1])

    noise = np.random.default_rng(0).uniform(size=leaves.shape)
    assert neighbour_correlation(leaves) > 0.6 > neighbour_correlation(noise) + 0.5
    # the channels are correlated (tinted brightness), as in photographs
    assert np.corrcoef(leaves[:, 0].ravel(), leaves[:, 1].ravel())[0, 1] > 0.2
    assert leaves.std(axis=(2, 3)).mean() > 0.1  # cluttered: several leaves show in each image


@pytest.mark.parametrize("benchmark, source, target", [
    ("printed-digits", "serif", "optdigits"), ("printed-digits", "optdigits", "sans"),
    ("optdigits-leaves", "optdigits", "optdigits-leaves"),
])  # fmt: skip
def test_rendered_benchmarks_build_seeded_tasks(benchmark, source, target):
    a, b, c = (data.task(benchmark, source, target, seed=s) for s in (0, 0, 1))
    assert a.input_shape == ((3, 16, 16) if benchmark == "optdigits-leaves" else (1, 16, 16))
    rendered_side = a.source_train if source == "serif" else a.target_test  # the UCI digits are all of them
    same = b.source_train if source == "serif" else b.target_test
    other = c.source_train if source == "serif" else c.target_test
    assert np.array_equal(rendered_side.tensors[0].numpy(), same.tensors[0].numpy())
    assert not np.array_equal(rendered_side.tensors[0].numpy(), other.tensors[0].numpy())
    assert a.num_classes == 10


def test_leaves_blend_uses_other_backgrounds_than_optdigits_m():
    leaves = data.task("optdigits-leaves", "optdigits", "optdigits-leaves").target_test.tensors[0]
    photos = data.task("optdigits", "optdigits", "optdigits-m").target_test.tensors[0]
    source = data.task("optdigits-leaves", "optdigits", "optdigits-leaves").source_train.tensors[0]
    same_source = data.task("optdigits", "optdigits", "optdigits-m").source_train.tensors[0]
    assert np.array_equal(source.numpy(), same_source.numpy())  # the same digits, the same halves
    assert not np.allclose(leaves.numpy(), photos.numpy(), atol=0.1)
