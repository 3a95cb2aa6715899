"""Search-space kinds of suite files: ``[search.<method>] <hyperparameter> = [kind, ...]``.

Each kind declares in one place how its arguments are checked (when the suite is loaded, before
anything runs) and how a value is drawn (when the sweep is expanded), so a kind cannot be accepted
by one and misread by the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..registry import Registry


@dataclass(frozen=True)
class SearchKind:
    """``check(args)`` returns a problem (or None); ``draw(rng, args)`` returns one value."""

    usage: str
    check: Callable[[list[Any]], str | None]
    draw: Callable[[np.random.Generator, list[Any]], Any]


SEARCH_KINDS: Registry[SearchKind] = Registry("search kind", case_sensitive=True)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_range(args: list[Any], positive: bool) -> str | None:
    if len(args) != 2 or not all(map(_is_number, args)) or not args[0] < args[1]:
        return "needs low < high"
    if positive and args[0] <= 0:
        return "needs low > 0"
    return None


SEARCH_KINDS.add(
    "log_uniform",
    SearchKind(
        '["log_uniform", low, high]',
        lambda args: _check_range(args, positive=True),
        lambda rng, args: float(np.exp(rng.uniform(np.log(args[0]), np.log(args[1])))),
    ),
)
SEARCH_KINDS.add(
    "uniform",
    SearchKind(
        '["uniform", low, high]',
        lambda args: _check_range(args, positive=False),
        lambda rng, args: float(rng.uniform(args[0], args[1])),
    ),
)
SEARCH_KINDS.add(
    "choice",
    SearchKind(
        '["choice", [value, ...]]',
        lambda args: None if len(args) == 1 and isinstance(args[0], list) and args[0] else "needs a non-empty list",
        lambda rng, args: args[0][int(rng.integers(len(args[0])))],
    ),
)


def check_search_spec(spec: Any) -> str | None:
    """The problem with one ``[kind, ...]`` entry of a search space, or None when it is valid."""
    if not isinstance(spec, list) or not spec or spec[0] not in SEARCH_KINDS:
        return "must be [kind, ...] with kind in " + ", ".join(SEARCH_KINDS.names())
    kind = SEARCH_KINDS.get(spec[0])
    problem = kind.check(spec[1:])
    return None if problem is None else f"must be {kind.usage}: {problem}"


def draw(spec: list[Any], rng: np.random.Generator) -> Any:
    """One value from a (checked) ``[kind, ...]`` entry."""
    return SEARCH_KINDS.get(spec[0]).draw(rng, spec[1:])
