"""UCI digits under the 15 common corruptions at 5 severities (see ``adapt.data.corruptions``)."""

from __future__ import annotations

import numpy as np

from ..base import TargetDomains, Task, stratified_split
from ..benchmark import Benchmark, TaskRequest, array_task, register_benchmark
from ..corruptions import CORRUPTIONS, OPTDIGITS_C_DOMAINS, corrupt, domain_sequence, parse_domain
from ..digits import DIGIT_CLASSES
from ..synthetic import _optdigits


def _domain_images(images: np.ndarray, domain: str, seed: int) -> np.ndarray:
    parsed = parse_domain(domain)
    return images if parsed is None else corrupt(images, *parsed, seed=seed)


def build(request: TaskRequest) -> Task:
    images, labels = _optdigits(request.seed)
    source_idx, target_idx = stratified_split(labels, 0.5, request.seed)
    if domain_sequence(request.source) is not None:
        raise ValueError(f"optdigits-c domain {request.source!r} is a sequence of corruptions: a target, not a source")
    xs = _domain_images(images[source_idx], request.source, request.seed)
    sequence = domain_sequence(request.target) or [request.target]
    corrupted = {domain: _domain_images(images[target_idx], domain, request.seed) for domain in dict.fromkeys(sequence)}
    xt = np.concatenate([corrupted[domain] for domain in sequence])
    yt = np.tile(labels[target_idx], len(sequence))
    task = array_task(request, (_signed(xs), labels[source_idx]), (_signed(xt), yt), DIGIT_CLASSES, (1, 16, 16))
    if len(sequence) > 1:  # which stretch of the target each example belongs to (the online protocol streams them)
        task.extra["target_domains"] = TargetDomains(sequence, np.repeat(np.arange(len(sequence)), len(target_idx)))
    return task


def _signed(x: np.ndarray) -> np.ndarray:
    return ((x - 0.5) / 0.5).astype(np.float32)  # [0, 1] -> [-1, 1], as the other digit benchmarks


register_benchmark(
    Benchmark(
        name="optdigits-c",
        domains=OPTDIGITS_C_DOMAINS,
        protocol="transductive",
        description="UCI digits, gray 16x16, disjoint halves: clean source, target under one of the 15 common "
        "corruptions (Hendrycks & Dietterich 2019) at severity 1-5, generated deterministically, or a sequence of "
        "them for continual test-time adaptation (all-<severity>, all-5x10, gradual)",
        default_tasks=tuple(("clean", f"{name}-5") for name in CORRUPTIONS),
        offline=True,
        build=build,
        files="scikit-learn's bundled UCI digits",
    )
)
