"""Inter-twinning moons (Ganin et al., JMLR 2016, Sec. 5.1): the target is the source rotated."""

from __future__ import annotations

from ..base import Task
from ..benchmark import Benchmark, TaskRequest, array_task, register_benchmark
from ..synthetic import moons_shift


def build(request: TaskRequest) -> Task:
    options = request.options
    xs, ys, xt, yt = moons_shift(options["n_per_moon"], options["angle"], options["noise"], request.seed)
    return array_task(request, (xs, ys), (xt, yt), ["upper moon", "lower moon"], (2,))


register_benchmark(
    Benchmark(
        name="moons",
        domains=("source", "rotated"),
        protocol="transductive",
        description="DANN paper's inter-twinning moons, 150 points per moon; target rotated by `angle` (35) degrees",
        default_tasks=(("source", "rotated"),),
        offline=True,
        build=build,
        files="generated from the seed",
        options={"n_per_moon": 150, "angle": 35.0, "noise": 0.1},
    )
)
