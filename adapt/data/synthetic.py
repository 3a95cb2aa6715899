"""Synthetic domain shifts generated from a seed (no download, no external files)."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms.functional import InterpolationMode, gaussian_blur, rotate

from .base import stratified_split
from .rendered import dead_leaves, printed_digits


def _rotate(points: np.ndarray, degrees: float) -> np.ndarray:
    theta = math.radians(degrees)
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    return points @ rotation.T


def make_moons(n_per_moon: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (the scikit-learn construction), centred at the origin."""
    angles_upper = rng.uniform(0.0, math.pi, n_per_moon)
    angles_lower = rng.uniform(0.0, math.pi, n_per_moon)
    upper = np.stack([np.cos(angles_upper), np.sin(angles_upper)], axis=1)
    lower = np.stack([1.0 - np.cos(angles_lower), 0.5 - np.sin(angles_lower)], axis=1)
    x = np.concatenate([upper, lower]) + rng.normal(0.0, noise, (2 * n_per_moon, 2))
    x = x - np.array([0.5, 0.25])
    y = np.concatenate([np.zeros(n_per_moon, np.int64), np.ones(n_per_moon, np.int64)])
    return x.astype(np.float32), y


def moons_shift(
    n_per_moon: int = 150, angle: float = 35.0, noise: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The inter-twinning moons of Ganin et al., JMLR 2016, Sec. 5.1.

    The source is two moons with ``n_per_moon`` points each; the target is an independent draw of
    the same moons rotated by ``angle`` degrees about the origin.

    Returns
    -------
    xs (2n, 2) float32, ys (2n,) int64, xt (2n, 2) float32, yt (2n,) int64
    """
    rng = np.random.default_rng(seed)
    xs, ys = make_moons(n_per_moon, noise, rng)
    xt, yt = make_moons(n_per_moon, noise, rng)
    return xs, ys, _rotate(xt, angle).astype(np.float32), yt


BLOB_SHIFTS = ("covariate", "label", "conditional", "subspace")


def _draw_blobs(
    rng: np.random.Generator, counts: np.ndarray, centers: np.ndarray, scale: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """``counts[c]`` Gaussian points around ``centers[c]`` per class (float32 x, int64 y)."""
    y = np.repeat(np.arange(len(centers)), counts)
    x = centers[y] + rng.normal(0, 1, (len(y), centers.shape[1])) * scale
    return x.astype(np.float32), y.astype(np.int64)


def _two_cluster_mixture(
    rng: np.random.Generator, means: np.ndarray, n_per_class: int, p_first: float
) -> tuple[np.ndarray, np.ndarray]:
    """Each class as two sub-clusters, the first drawn with probability ``p_first`` (covariate shift)."""
    num_classes, dim = means.shape
    offset = np.zeros(dim)
    offset[:2] = [1.2, -1.2]
    y = np.repeat(np.arange(num_classes), n_per_class)
    first = rng.random(len(y)) < p_first
    centers = means[y] + np.where(first[:, None], -offset, offset)
    return (centers + rng.normal(0, 0.6, (len(y), dim))).astype(np.float32), y.astype(np.int64)


def blobs_shift(
    shift: str = "conditional", n_per_class: int = 100, num_classes: int = 3, dim: int = 2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian-mixture domains with one named kind of shift (the SKADA shift taxonomy).

    * ``covariate``: each class is two sub-clusters; the source draws 85 % from the first, the
      target 85 % from the second. p(x) changes, p(y|x) does not.
    * ``label``: same class-conditionals; the source is balanced, the target's class proportions
      fall geometrically (most examples in class 0). p(y) changes.
    * ``conditional``: the target's class clusters are rotated by 40 degrees and translated. p(x|y)
      changes (what feature alignment methods target).
    * ``subspace``: classes differ along dimension 0; the source has large nuisance variance along
      dimension 1, the target along the last dimension (needs ``dim >= 3``).

    Returns xs (n_s, dim) float32, ys int64, xt (n_t, dim) float32, yt int64.
    """
    if shift not in BLOB_SHIFTS:
        raise ValueError(f"unknown blobs shift {shift!r}; choose one of {', '.join(BLOB_SHIFTS)}")
    if dim < 2 or (shift == "subspace" and dim < 3):
        raise ValueError(f"blobs with a {shift} shift need dim >= {3 if shift == 'subspace' else 2}, got {dim}")
    rng = np.random.default_rng(seed)
    angles = 2 * math.pi * np.arange(num_classes) / num_classes
    means = np.zeros((num_classes, dim))
    means[:, 0], means[:, 1] = 3 * np.cos(angles), 3 * np.sin(angles)

    def draw(counts: np.ndarray, centers: np.ndarray, scale: np.ndarray | float = 0.8) -> tuple[np.ndarray, np.ndarray]:
        return _draw_blobs(rng, counts, centers, scale)

    balanced = np.full(num_classes, n_per_class)
    if shift == "covariate":
        xs, ys = _two_cluster_mixture(rng, means, n_per_class, 0.85)
        xt, yt = _two_cluster_mixture(rng, means, n_per_class, 0.15)
    elif shift == "label":
        # overlapping classes, so the source-trained decision boundary is wrong for the target prior
        xs, ys = draw(balanced, means, 1.6)
        proportions = 0.25 ** np.arange(num_classes)
        counts = np.maximum(1, np.round(n_per_class * num_classes * proportions / proportions.sum())).astype(int)
        xt, yt = draw(counts, means, 1.6)
    elif shift == "conditional":
        xs, ys = draw(balanced, means)
        rotated = means.copy()
        theta = math.radians(40)
        rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
        rotated[:, :2] = means[:, :2] @ rot.T + np.array([1.0, 0.5])
        xt, yt = draw(balanced, rotated)
    else:
        means = np.zeros((num_classes, dim))
        means[:, 0] = 3 * (np.arange(num_classes) - (num_classes - 1) / 2)
        source_scale = np.full(dim, 0.6)
        source_scale[1] = 4.0
        target_scale = np.full(dim, 0.6)
        target_scale[-1] = 4.0
        xs, ys = draw(balanced, means, source_scale)
        xt, yt = draw(balanced, means, target_scale)
    return xs, ys, xt, yt


OPTDIGITS_ANGLES = (0, 15, 30, 45, 60, 75)


def _optdigits(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled UCI optical digits (1797 images, 8x8, 0..16) as 16x16 floats in [0, 1]."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    images = F.interpolate(images, size=(16, 16), mode="bilinear", align_corners=False).clamp(0, 1)
    return images.numpy(), bunch.target.astype(np.int64)


def photo_patches(photos: list[np.ndarray], count: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random ``size`` x ``size`` crops (N, 3, size, size) of RGB photos (H, W, 3) in [0, 1]."""
    which = rng.integers(0, len(photos), count)
    patches = np.empty((count, 3, size, size), np.float32)
    for i, w in enumerate(which):
        photo = photos[w]
        top = rng.integers(0, photo.shape[0] - size)
        left = rng.integers(0, photo.shape[1] - size)
        patches[i] = photo[top : top + size, left : left + size].transpose(2, 0, 1)
    return patches


def blend_with_photos(digits: np.ndarray, patches: np.ndarray) -> np.ndarray:
    """The MNIST-M blend (Ganin et al., JMLR 2016, Sec. 5.2.1): per-channel ``|patch - digit|``.

    ``digits`` (N, 1, H, W) in [0, 1] (white strokes on black), ``patches`` (N, 3, H, W) in [0, 1].
    """
    return np.abs(patches - digits).astype(np.float32)


def _sklearn_photos() -> list[np.ndarray]:
    from sklearn.datasets import load_sample_images

    return [img.astype(np.float32) / 255.0 for img in load_sample_images().images]


def optdigits_shift(
    seed: int = 0, backgrounds: Literal["photos", "leaves"] = "photos"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """optdigits -> optdigits-m: the MNIST-M recipe (Ganin et al., JMLR 2016, Sec. 5.2.1) on UCI digits.

    The 1797 digits are split (stratified, seeded) into two disjoint halves. The source half is the
    plain digit (white on black) repeated over three channels; the target half is the per-channel
    absolute difference between the digit and a background: a random 16x16 patch of one of the colour
    photos bundled with scikit-learn (``backgrounds="photos"``), or a dead-leaves image
    (``"leaves"``, :func:`adapt.data.rendered.dead_leaves`). Values in [-1, 1], shape (N, 3, 16, 16).
    """
    images, labels = _optdigits(seed)
    rng = np.random.default_rng(seed)
    source_idx, target_idx = stratified_split(labels, 0.5, seed)
    xs = np.repeat(images[source_idx], 3, axis=1)
    digits = images[target_idx]
    if backgrounds == "photos":
        patches = photo_patches(_sklearn_photos(), len(target_idx), 16, rng)
    elif backgrounds == "leaves":
        patches = dead_leaves(len(target_idx), rng)
    else:
        raise ValueError(f"backgrounds must be 'photos' or 'leaves', got {backgrounds!r}")
    xt = blend_with_photos(digits, patches)
    return (xs - 0.5) / 0.5, labels[source_idx], ((xt - 0.5) / 0.5).astype(np.float32), labels[target_idx]


def printed_digit_shift(
    source: str, target: str, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two digit collections at one size: scikit-learn's handwritten UCI digits ("optdigits", all
    1797) and digits printed in a font family ("sans" or "serif", 900 each, seeded; see
    :func:`adapt.data.rendered.printed_digits`). Gray 16x16, values in [-1, 1]."""

    def domain(name: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return _optdigits(seed) if name == "optdigits" else printed_digits(name, 90, rng)

    rng = np.random.default_rng(seed)
    (xs, ys), (xt, yt) = domain(source, rng), domain(target, rng)
    return ((xs - 0.5) / 0.5).astype(np.float32), ys, ((xt - 0.5) / 0.5).astype(np.float32), yt


def rotated_optdigits(
    seed: int = 0, angles: tuple[int, ...] = OPTDIGITS_ANGLES
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """RotatedMNIST-style domains from the UCI digits: disjoint, stratified parts, one per angle.

    Returns angle -> (x (N, 1, 16, 16) in [-1, 1], y).
    """

    images, labels = _optdigits(seed)
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in angles]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        for k, chunk in enumerate(np.array_split(idx, len(angles))):
            parts[k].extend(chunk.tolist())
    domains = {}
    for angle, part in zip(angles, parts):
        idx = np.sort(np.asarray(part))
        x = rotate(torch.from_numpy(images[idx]), float(angle), interpolation=InterpolationMode.BILINEAR)
        domains[angle] = (((x.numpy() - 0.5) / 0.5).astype(np.float32), labels[idx])
    return domains


#: Domains of the ``optdigits-shifts`` benchmark: one kind of image shift each ("clean" is none).
OPTDIGITS_SHIFTS = ("clean", "scale", "noise", "blur", "contrast", "thick", "imbalanced", "minority")


def shift_digits(
    images: np.ndarray, labels: np.ndarray, kind: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Apply one named shift to digits (N, 1, H, W) in [0, 1] (white strokes on black).

    * ``clean``: unchanged.
    * ``scale``: zoomed out to 80 % of the size, centred (the scale gap between digit collections).
    * ``noise``: additive Gaussian noise, standard deviation 0.45, clipped to [0, 1].
    * ``blur``: Gaussian blur, sigma 2.5 pixels.
    * ``contrast``: strokes and background squeezed into [0.3, 0.7] (a washed-out scan).
    * ``thick``: strokes dilated by one pixel (3x3 maximum filter), as between pen widths.
    * ``imbalanced``: no change to the images; the classes are subsampled to proportions
      :math:`0.7^c` (class 0 most frequent): a pure label shift, where aligning the marginal
      feature distributions can only hurt.
    * ``minority``: no change to the images; classes 5 to 9 are subsampled to a fifth of their
      examples: a label shift of another profile (a step, not a geometric fall), for the tuning half.
    """

    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    size = x.shape[-1]
    if kind == "clean":
        pass
    elif kind == "scale":
        small = round(0.8 * size)
        pad = (size - small) // 2
        x = F.pad(F.interpolate(x, size=(small, small), mode="bilinear", align_corners=False),
                  (pad, size - small - pad, pad, size - small - pad))  # fmt: skip
    elif kind == "noise":
        x = x + torch.from_numpy(rng.normal(0.0, 0.45, x.shape).astype(np.float32))
    elif kind == "blur":
        x = gaussian_blur(x, kernel_size=9, sigma=2.5)
    elif kind == "contrast":
        x = 0.3 + 0.4 * x
    elif kind == "thick":
        x = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
    elif kind == "imbalanced":
        keep = np.zeros(len(labels), dtype=bool)
        for c in np.unique(labels):
            idx = np.flatnonzero(labels == c)
            n = max(3, round(len(idx) * 0.7 ** int(c)))
            keep[rng.choice(idx, size=min(n, len(idx)), replace=False)] = True
        return images[keep], labels[keep]
    elif kind == "minority":
        keep = np.ones(len(labels), dtype=bool)
        for c in range(5, 10):
            idx = np.flatnonzero(labels == c)
            keep[idx] = False
            keep[rng.choice(idx, size=max(3, round(0.2 * len(idx))), replace=False)] = True
        return images[keep], labels[keep]
    else:
        raise ValueError(f"unknown digit shift {kind!r}; choose one of {', '.join(OPTDIGITS_SHIFTS)}")
    return x.clamp(0.0, 1.0).numpy(), labels


def optdigits_shifts(source: str, target: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """UCI digits with one kind of image shift per domain (see :func:`shift_digits`).

    The 1797 digits are split (stratified, seeded) into two disjoint halves; the source half gets
    the ``source`` shift and the target half the ``target`` shift. Gray 16x16, values in [-1, 1].
    """

    images, labels = _optdigits(seed)
    source_idx, target_idx = stratified_split(labels, 0.5, seed)
    rng = np.random.default_rng(seed)
    xs, ys = shift_digits(images[source_idx], labels[source_idx], source, rng)
    xt, yt = shift_digits(images[target_idx], labels[target_idx], target, rng)
    return ((xs - 0.5) / 0.5).astype(np.float32), ys, ((xt - 0.5) / 0.5).astype(np.float32), yt
