"""Gaussian mixtures with one kind of shift each: covariate, label, conditional or subspace."""

from __future__ import annotations

from ..base import Task
from ..benchmark import Benchmark, TaskRequest, array_task, register_benchmark
from ..synthetic import BLOB_SHIFTS, blobs_shift


def build(request: TaskRequest) -> Task:
    shift = request.benchmark.split("-", 1)[1]
    options = request.options
    dim = options.get("dim", 3 if shift == "subspace" else 2)
    xs, ys, xt, yt = blobs_shift(
        shift, options.get("n_per_class", 100), options.get("num_classes", 3), dim, request.seed
    )
    return array_task(request, (xs, ys), (xt, yt), [f"class {i}" for i in range(int(ys.max()) + 1)], (dim,))


for _shift in BLOB_SHIFTS:
    register_benchmark(
        Benchmark(
            name=f"blobs-{_shift}",
            domains=("source", "target"),
            protocol="transductive",
            description=f"3-class Gaussian mixtures with a {_shift} shift",
            default_tasks=(("source", "target"),),
            offline=True,
            build=build,
            files="generated from the seed",
            options=frozenset({"n_per_class", "num_classes", "dim"}),
        )
    )
