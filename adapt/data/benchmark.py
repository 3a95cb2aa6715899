"""What a benchmark is, and the registry that lists them.

A benchmark declares its domains, usual protocol, default tasks, where its files come from and how
to build a ``source -> target`` :class:`~adapt.data.base.Task`. Each one lives in its own module in
``adapt/data/catalog/`` and registers itself with :func:`register_benchmark`; adding a dataset is
one new module there plus its import line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

from ..registry import Registry
from .base import Protocol, Task, make_task


@dataclass(frozen=True)
class TaskRequest:
    """Everything :func:`adapt.data.task` was asked for, checked, handed to a benchmark's ``build``."""

    benchmark: str
    source: str
    target: str
    root: Path | None
    protocol: Protocol
    seed: int
    test_fraction: float
    source_holdout: float
    download: bool
    options: dict[str, Any] = field(default_factory=dict)

    def split_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`~adapt.data.base.make_task` that every benchmark passes on."""
        return {
            "protocol": self.protocol,
            "seed": self.seed,
            "test_fraction": self.test_fraction,
            "source_holdout": self.source_holdout,
        }


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: its domains, usual protocol, default tasks, files, and how to build a task.

    ``offline`` benchmarks are generated from a seed or from files pip installs (no ``root``);
    ``options`` are the keyword options ``task(...)`` accepts for it (generator settings and the like),
    each with its default (``task`` fills the defaults in before ``build`` sees the request, and a
    benchmark run's identity hashes them). ``revision`` moves when the data ``build`` makes changes.
    """

    name: str
    domains: tuple[str, ...]
    protocol: Protocol
    description: str
    default_tasks: tuple[tuple[str, str], ...]
    offline: bool
    build: Callable[[TaskRequest], Task]
    files: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    revision: int = 1


BENCHMARKS: Registry[Benchmark] = Registry("benchmark", case_sensitive=True)


def register_benchmark(benchmark: Benchmark) -> Benchmark:
    """Add ``benchmark`` to :data:`BENCHMARKS` under its name."""
    return BENCHMARKS.add(benchmark.name, benchmark)


def benchmarks() -> dict[str, Benchmark]:
    """All registered benchmarks by name."""
    return dict(BENCHMARKS.items())


def all_pairs(domains: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Every ordered (source, target) pair of distinct domains."""
    return tuple((s, t) for s in domains for t in domains if s != t)


def tensor_pair(x: np.ndarray, y: np.ndarray) -> TensorDataset:
    """Arrays as a float32 / int64 TensorDataset."""
    return TensorDataset(
        torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(y.astype(np.int64))
    )


def array_task(
    request: TaskRequest,
    source: tuple[np.ndarray, np.ndarray],
    target: tuple[np.ndarray, np.ndarray],
    classes: list[str],
    input_shape: tuple[int, ...],
) -> Task:
    """A task from generated ``(x, y)`` arrays of both domains."""
    return make_task(
        request.benchmark,
        request.source,
        tensor_pair(*source),
        request.target,
        tensor_pair(*target),
        classes,
        input_shape,
        description=BENCHMARKS[request.benchmark].description,
        **request.split_options(),
    )
