"""The order a test stream arrives in: shuffled (i.i.d.) or correlated by label, as in the TTA benchmarks.

Test-time methods are ranked differently when the classes of a stream arrive in runs instead of at
random (Gong et al., "NOTE: Robust Continual Test-time Adaptation Against Temporal Correlation", NeurIPS
2022; Boudiaf et al., "Parameter-free Online Test-time Adaptation", CVPR 2022). The reference benchmark
(mariodoebler/test-time-adaptation) streams a label-correlated sequence drawn by a Dirichlet
distribution with concentration ``delta``: small ``delta``, long runs of one class; ``delta = 0``, the
stream sorted by label. :func:`stream_order` draws either order from a seed.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

#: How many Dirichlet draws :func:`label_correlated_order` tries before it gives up (the reference
#: benchmark gives up after 120 seconds).
MAX_DIRICHLET_DRAWS = 1000


@dataclass(frozen=True)
class StreamConfig:
    """How an online run streams its target: ``batch_size`` examples per batch, in ``order``.

    ``order`` is ``"shuffled"`` (a random permutation) or ``"correlated"`` (the shuffled stream re-ordered
    by label, :func:`label_correlated_order`, with Dirichlet concentration ``dirichlet_delta``; 0 sorts
    it by label, the reference benchmark's "correlated" setting). For a target of several domains
    (``optdigits-c``'s ``all-5``, ``gradual``, ...), ``domains`` is ``"sequence"`` (each domain in turn,
    ordered within as ``order`` says, with no reset between them: the "continual" setting) or
    ``"mixed"`` (every domain's examples in one stream, the "mixed domains" setting).

    ``examples_per_domain`` streams only that many examples of each domain (of the target, when it has one
    domain), a subset drawn by the run's seed, as the reference benchmark's ``NUM_EX`` (None: all).
    ``charge_compute`` charges a method for its time, as the online protocol of Alfarra et al. ("Evaluation
    of Test-Time Adaptation Under Computational Time Constraints", ICML 2024): the stream does not wait, so
    a method :math:`k` times slower than the source model's forward pass adapts on one batch in
    :math:`k` and the batches between are predicted by its latest model without adapting
    (:func:`measure_relative_speed` measures :math:`k`, the run records it).
    """

    batch_size: int = 64
    order: Literal["shuffled", "correlated"] = "shuffled"
    dirichlet_delta: float = 0.0
    domains: Literal["sequence", "mixed"] = "sequence"
    examples_per_domain: int | None = None
    charge_compute: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.batch_size, bool) or int(self.batch_size) != self.batch_size or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if self.order not in ("shuffled", "correlated"):
            raise ValueError(f"order must be 'shuffled' or 'correlated', got {self.order!r}")
        if not self.dirichlet_delta >= 0:
            raise ValueError(f"dirichlet_delta must be >= 0 (0: sorted by label), got {self.dirichlet_delta!r}")
        if self.order == "shuffled" and self.dirichlet_delta:
            raise ValueError("dirichlet_delta applies to order = 'correlated' only")
        if self.domains not in ("sequence", "mixed"):
            raise ValueError(f"domains must be 'sequence' or 'mixed', got {self.domains!r}")
        n = self.examples_per_domain
        if n is not None and (isinstance(n, bool) or int(n) != n or n < 1):
            raise ValueError(f"examples_per_domain must be a positive integer (or None: all), got {n!r}")
        if not isinstance(self.charge_compute, bool):
            raise ValueError(f"charge_compute must be true or false, got {self.charge_compute!r}")


def stream_order(labels: np.ndarray, config: StreamConfig, seed: int, domains: np.ndarray | None = None) -> np.ndarray:
    """Indices of the examples (labels ``labels``) in the order a stream under ``config`` visits them: a
    permutation seeded by ``seed``, then, for ``"correlated"``, re-ordered by label. With ``domains`` (the
    stretch of each example, :class:`adapt.data.base.TargetDomains`) and ``config.domains == "sequence"``,
    each stretch in turn, ordered within. ``config.examples_per_domain`` keeps a random subset of each."""
    labels = np.asarray(labels)
    rng = np.random.RandomState(seed)
    ids = np.zeros(len(labels), dtype=int) if domains is None else np.asarray(domains)
    stretches = [np.flatnonzero(ids == d) for d in dict.fromkeys(ids.tolist())]
    if config.examples_per_domain is not None:  # a subset of each, drawn by the seed, in the dataset's order
        stretches = [np.sort(rng.permutation(m)[: config.examples_per_domain]) for m in stretches]
    if domains is None or config.domains == "mixed":
        members = np.sort(np.concatenate(stretches))
        return _ordered(members, labels[members], config, rng)
    return np.concatenate([_ordered(members, labels[members], config, rng) for members in stretches])


def measure_relative_speed(adapter: Any, x: torch.Tensor, repeats: int = 3) -> int:
    """Alfarra et al.'s relative adaptation speed of ``adapter`` on the batch ``x``: how many forward passes
    fit in one of the method's steps, rounded up. The forward pass is the method's own prediction without
    adapting (:meth:`TestTimeAdapter.predict_unadapted`: the source model's network, through the same code,
    so that the per-batch overhead of a small network does not count as adaptation); the step is
    :meth:`TestTimeAdapter.predict_logits`. Both are timed ``repeats`` times after one warm-up, on a copy
    of ``adapter`` (``adapter`` itself is left as it was), and the medians compared. Depends on the machine:
    a run records it."""
    probe = copy.deepcopy(adapter)
    device = probe.device
    batch = x.to(device)

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def forward() -> None:
        probe.predict_unadapted(batch)
        synchronize()

    def step() -> None:
        probe.predict_logits(batch)
        synchronize()

    forward_time, step_time = _median_time(forward, repeats), _median_time(step, repeats)
    return max(1, math.ceil(step_time / max(forward_time, 1e-9)))


def _median_time(fn: Callable[[], None], repeats: int) -> float:
    fn()  # warm-up: lazy initialization, allocator, kernels
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _ordered(members: np.ndarray, labels: np.ndarray, config: StreamConfig, rng: np.random.RandomState) -> np.ndarray:
    order = rng.permutation(len(members))
    if config.order == "correlated":
        order = order[label_correlated_order(labels[order], config.dirichlet_delta, rng)]
    return members[order]


def label_correlated_order(labels: np.ndarray, delta: float, rng: np.random.RandomState) -> np.ndarray:
    """A temporally label-correlated order of the examples with class labels ``labels`` (0..K-1).

    Follows ``sort_by_dirichlet`` of the reference benchmark (mariodoebler/test-time-adaptation at
    8b2ed63, ``classification/datasets/data_loading.py`` lines 329-386, adapted there from NOTE): the
    examples are split into K chunks, each class spread over the chunks by proportions drawn from
    Dirichlet(``delta``) (a chunk that already holds N/K examples gets no more), redrawn until every chunk
    holds at least 10; the stream is chunk after chunk, each chunk's classes in a random order. ``delta = 0``
    sorts the examples by label (stably), as their "correlated" setting does. ``rng``'s calls are theirs
    (``shuffle``, ``dirichlet``), so a NumPy ``RandomState`` seeded as their global one gives their order.
    """
    labels = np.asarray(labels).astype(int)
    if delta == 0:
        return np.argsort(labels, kind="stable")
    n, k = len(labels), int(labels.max()) + 1
    if n < 10 * k:
        raise ValueError(f"a Dirichlet label-correlated order needs 10 examples per class chunk: {n} examples, "
                         f"{k} classes; use dirichlet_delta = 0 (sorted by label) or a longer stream")  # fmt: skip
    for _ in range(MAX_DIRICHLET_DRAWS):
        chunks: list[list[int]] = [[] for _ in range(k)]
        chunk_classes: list[list[np.ndarray]] = [[] for _ in range(k)]
        for c in range(k):
            members = np.where(labels == c)[0]
            rng.shuffle(members)
            with np.errstate(invalid="ignore", divide="ignore"):  # a tiny delta can draw all zeros: redrawn
                proportions = rng.dirichlet(np.repeat(delta, k))
                proportions = np.array([p * (len(chunk) < n / k) for p, chunk in zip(proportions, chunks)])
                cuts = (np.cumsum(proportions / proportions.sum()) * len(members)).astype(int)[:-1]
            for chunk, held, part in zip(chunks, chunk_classes, np.split(members, cuts)):
                chunk.extend(part.tolist())
                held.append(part)
        if min(len(chunk) for chunk in chunks) >= 10:
            break
    else:
        raise ValueError(f"no label-correlated order with dirichlet_delta={delta} after {MAX_DIRICHLET_DRAWS} "
                         f"draws ({n} examples, {k} classes: every chunk needs 10); "
                         "try a larger dirichlet_delta")  # fmt: skip
    order: list[int] = []
    for held in chunk_classes:
        classes = list(range(k))
        rng.shuffle(classes)
        for c in classes:
            order.extend(held[c].tolist())
    return np.asarray(order, dtype=int)
