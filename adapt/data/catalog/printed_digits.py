"""Two digit collections at one size: handwritten UCI digits and digits printed in a font family."""

from __future__ import annotations

from ..base import Task
from ..benchmark import Benchmark, TaskRequest, array_task, register_benchmark
from ..digits import DIGIT_CLASSES
from ..synthetic import printed_digit_shift


def build(request: TaskRequest) -> Task:
    xs, ys, xt, yt = printed_digit_shift(request.source, request.target, request.seed)
    return array_task(request, (xs, ys), (xt, yt), DIGIT_CLASSES, (1, 16, 16))


register_benchmark(
    Benchmark(
        name="printed-digits",
        domains=("optdigits", "sans", "serif"),
        protocol="transductive",
        description="scikit-learn's handwritten UCI digits and digits printed in sans or serif typefaces "
        "(matplotlib's fonts; seeded size, stroke, rotation and offset), gray 16x16",
        default_tasks=(("serif", "optdigits"), ("optdigits", "sans")),
        offline=True,
        build=build,
        files="scikit-learn's bundled UCI digits and matplotlib's bundled fonts (the bench extra)",
    )
)
