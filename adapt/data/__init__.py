"""Datasets and domain-shift tasks."""

from .synthetic import make_moons, moons_shift

__all__ = ["make_moons", "moons_shift"]
