"""Synthetic domain shifts generated from a seed (no download, no external files)."""

from __future__ import annotations

import math

import numpy as np


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
