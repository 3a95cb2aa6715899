"""Gaussian mixtures with one kind of shift each: covariate, label, conditional or subspace."""

from __future__ import annotations

from ..base import Task
from ..benchmark import Benchmark, TaskRequest, array_task, register_benchmark
from ..synthetic import BLOB_SHIFTS, blobs_shift


def build(request: TaskRequest) -> Task:
    shift = request.benchmark.split("-", 1)[1]
    options = request.options
    dim = options["dim"]
    xs, ys, xt, yt = blobs_shift(shift, options["n_per_class"], options["num_classes"], dim, request.seed)
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
            options={"n_per_class": 100, "num_classes": 3, "dim": 3 if _shift == "subspace" else 2},
        )
    )
