"""VisDA-2017 classification (Peng et al., 2017): synthetic renderings (train) -> real photos (validation)."""

from __future__ import annotations

from pathlib import Path

from ..base import Task
from ..benchmark import Benchmark, TaskRequest, register_benchmark
from ..images import IMAGE_OPTIONS, image_task, read_image_list

CLASSES = [
    "aeroplane", "bicycle", "bus", "car", "horse", "knife", "motorcycle", "person", "plant", "skateboard",
    "train", "truck",
]  # fmt: skip
LAYOUT = (
    "<root>/visda2017/{train,validation}/image_list.txt with lines '<class>/<image>.jpg <label>',\n"
    "and the images at <root>/visda2017/{train,validation}/<class>/<image>.jpg"
)


def load_domain(root: Path, domain: str, split: str) -> tuple[list[tuple[str, int]], list[str]]:
    base = root / "visda2017" / domain
    return read_image_list(base / "image_list.txt", base), CLASSES


def build(request: TaskRequest) -> Task:
    return image_task(request, load_domain, LAYOUT, download=None)  # no published checksum: fetched by hand


register_benchmark(
    Benchmark(
        name="visda2017",
        domains=("train", "validation"),
        protocol="transductive",
        description=f"visda2017: 12 classes; layout {LAYOUT.splitlines()[0]}",
        default_tasks=(("train", "validation"),),
        offline=False,
        options=IMAGE_OPTIONS,
        build=build,
        files=LAYOUT,
    )
)
