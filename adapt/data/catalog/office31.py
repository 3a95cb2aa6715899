"""Office-31 (Saenko et al., ECCV 2010): Amazon product photos, DSLR and webcam pictures of 31 classes."""

from __future__ import annotations

from pathlib import Path

from ..base import Task
from ..benchmark import Benchmark, TaskRequest, all_pairs, register_benchmark
from ..images import IMAGE_OPTIONS, image_task, scan_folder

CLASSES = [
    "back_pack", "bike", "bike_helmet", "bookcase", "bottle", "calculator", "desk_chair", "desk_lamp",
    "desktop_computer", "file_cabinet", "headphones", "keyboard", "laptop_computer", "letter_tray",
    "mobile_phone", "monitor", "mouse", "mug", "paper_notebook", "pen", "phone", "printer", "projector",
    "punchers", "ring_binder", "ruler", "scissors", "speaker", "stapler", "tape_dispenser", "trash_can",
]  # fmt: skip
DOMAINS = ("amazon", "dslr", "webcam")
LAYOUT = "<root>/office31/{amazon,dslr,webcam}/images/<class>/<image>.jpg  (31 class folders each)"


def load_domain(root: Path, domain: str, split: str) -> tuple[list[tuple[str, int]], list[str]]:
    return scan_folder(root / "office31" / domain / "images", CLASSES)


def build(request: TaskRequest) -> Task:
    return image_task(request, load_domain, LAYOUT, download="office31")


register_benchmark(
    Benchmark(
        name="office31",
        domains=DOMAINS,
        protocol="transductive",
        description=f"office31: 31 classes; layout {LAYOUT}",
        default_tasks=all_pairs(DOMAINS),
        offline=False,
        options=IMAGE_OPTIONS,
        build=build,
        files=LAYOUT,
    )
)
