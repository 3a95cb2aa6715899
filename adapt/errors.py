"""Errors every layer may raise (a leaf: imports nothing from adapt)."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: wrong shape, dtype, label range, empty domain, non-finite values, or a
    checkpoint that does not fit the model it is loaded into."""


class MissingDataError(RuntimeError):
    """A dataset a sweep needs is not on disk (and was not downloaded); the message is one line
    saying what is missing, where it was looked for and how to supply it."""
