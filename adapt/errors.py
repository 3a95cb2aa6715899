"""Errors every layer may raise (a leaf: imports nothing from adapt)."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: wrong shape, dtype, label range, empty domain, non-finite values, or a
    checkpoint that does not fit the model it is loaded into."""
