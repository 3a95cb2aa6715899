"""UCI digits -> the MNIST-M recipe over dead-leaves backgrounds (not optdigits-m's photos)."""

from __future__ import annotations

from ..base import Task
from ..benchmark import Benchmark, TaskRequest, array_task, register_benchmark
from ..digits import DIGIT_CLASSES
from ..synthetic import optdigits_shift


def build(request: TaskRequest) -> Task:
    xs, ys, xt, yt = optdigits_shift(request.seed, backgrounds="leaves")
    return array_task(request, (xs, ys), (xt, yt), DIGIT_CLASSES, (3, 16, 16))


register_benchmark(
    Benchmark(
        name="optdigits-leaves",
        domains=("optdigits", "optdigits-leaves"),
        protocol="transductive",
        description="scikit-learn's UCI digits -> the MNIST-M blend over dead-leaves colour backgrounds "
        "(Lee, Mumford & Huang 2001; disjoint halves)",
        default_tasks=(("optdigits", "optdigits-leaves"),),
        offline=True,
        build=build,
        files="scikit-learn's bundled UCI digits",
    )
)
