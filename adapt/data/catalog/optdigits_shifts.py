"""UCI digits, gray 16x16, disjoint halves, one image shift per domain (see ``shift_digits``)."""

from __future__ import annotations

from ..base import Task
from ..benchmark import Benchmark, TaskRequest, array_task, register_benchmark
from ..digits import DIGIT_CLASSES
from ..synthetic import OPTDIGITS_SHIFTS, optdigits_shifts


def build(request: TaskRequest) -> Task:
    xs, ys, xt, yt = optdigits_shifts(request.source, request.target, request.seed)
    return array_task(request, (xs, ys), (xt, yt), DIGIT_CLASSES, (1, 16, 16))


register_benchmark(
    Benchmark(
        name="optdigits-shifts",
        domains=OPTDIGITS_SHIFTS,
        protocol="transductive",
        description="UCI digits, gray 16x16, disjoint halves; one image shift per domain: scale, noise, blur, "
        "contrast, thick strokes, or a label shift (imbalanced: 0.7^c; minority: classes 5-9 at a fifth)",
        default_tasks=tuple(("clean", d) for d in OPTDIGITS_SHIFTS[1:]),
        offline=True,
        build=build,
        files="scikit-learn's bundled UCI digits",
    )
)
