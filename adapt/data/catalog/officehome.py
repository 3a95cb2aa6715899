"""Office-Home (Venkateswara et al., CVPR 2017): Art, Clipart, Product and Real-World images of 65 classes."""

from __future__ import annotations

from pathlib import Path

from ..base import Task
from ..benchmark import Benchmark, TaskRequest, all_pairs, register_benchmark
from ..images import IMAGE_OPTIONS, image_task, scan_folder

DOMAINS = ("Art", "Clipart", "Product", "Real_World")
LAYOUT = "<root>/officehome/{Art,Clipart,Product,Real_World}/<class>/<image>.jpg  (65 class folders each)"


def load_domain(root: Path, domain: str, split: str) -> tuple[list[tuple[str, int]], list[str]]:
    return scan_folder(root / "officehome" / domain)


def build(request: TaskRequest) -> Task:
    return image_task(request, load_domain, LAYOUT, download="officehome")


register_benchmark(
    Benchmark(
        name="officehome",
        domains=DOMAINS,
        protocol="transductive",
        description=f"officehome: 65 classes; layout {LAYOUT}",
        default_tasks=all_pairs(DOMAINS),
        offline=False,
        options=IMAGE_OPTIONS,
        build=build,
        files=LAYOUT,
    )
)
