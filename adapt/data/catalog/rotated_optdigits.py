"""UCI digits rotated by 0..75 degrees, a disjoint part per angle (the RotatedMNIST idea)."""

from __future__ import annotations

from ..base import Task
from ..benchmark import Benchmark, TaskRequest, array_task, register_benchmark
from ..digits import DIGIT_CLASSES
from ..synthetic import OPTDIGITS_ANGLES, rotated_optdigits


def build(request: TaskRequest) -> Task:
    domains = rotated_optdigits(request.seed)
    return array_task(request, domains[int(request.source)], domains[int(request.target)], DIGIT_CLASSES, (1, 16, 16))


register_benchmark(
    Benchmark(
        name="rotated-optdigits",
        domains=tuple(str(a) for a in OPTDIGITS_ANGLES),
        protocol="transductive",
        description="UCI digits rotated by 0..75 degrees, a disjoint part per angle (the RotatedMNIST idea)",
        default_tasks=(("0", "45"), ("0", "75")),
        offline=True,
        build=build,
        files="scikit-learn's bundled UCI digits",
    )
)
