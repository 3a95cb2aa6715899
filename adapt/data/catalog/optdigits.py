"""UCI digits -> the MNIST-M recipe, blended with scikit-learn's two bundled photos (disjoint halves)."""

from __future__ import annotations

from ..base import Task
from ..benchmark import Benchmark, TaskRequest, array_task, register_benchmark
from ..digits import DIGIT_CLASSES
from ..synthetic import optdigits_shift


def build(request: TaskRequest) -> Task:
    xs, ys, xt, yt = optdigits_shift(request.seed)
    return array_task(request, (xs, ys), (xt, yt), DIGIT_CLASSES, (3, 16, 16))


register_benchmark(
    Benchmark(
        name="optdigits",
        domains=("optdigits", "optdigits-m"),
        protocol="transductive",
        description="scikit-learn's UCI digits -> the MNIST-M recipe with scikit-learn's bundled photos "
        "(disjoint halves)",
        default_tasks=(("optdigits", "optdigits-m"),),
        offline=True,
        build=build,
        files="scikit-learn's bundled UCI digits and sample photos",
    )
)
