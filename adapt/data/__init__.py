"""Datasets and domain-shift tasks.

>>> from adapt import data
>>> task = data.task("moons", "source", "rotated")           # offline, generated from a seed
>>> task.name, len(task.source_train)
('moons/source->rotated', 300)

Downloaded and folder-based tasks work the same way (not doctests: they need the network or files)::

    task = data.task("office31", "amazon", "webcam", root="~/data", download=True)
    task = data.custom_task("photos/train", "photos/night")   # two ImageFolder dirs
"""

from .base import DatasetNotFoundError, Task, Unlabeled, dataset_labels, make_task, stratified_split, subset, unlabeled
from .benchmark import BENCHMARKS, Benchmark, TaskRequest, benchmarks, register_benchmark
from .digits import make_mnistm
from .download import DownloadError, download_verified
from .fewshot import few_shot_split, published_ssda_split
from .show import show
from .sources import SOURCES
from .synthetic import (
    blobs_shift,
    make_moons,
    moons_shift,
    optdigits_shift,
    optdigits_shifts,
    rotated_optdigits,
    shift_digits,
)
from .tasks import custom_task, task

__all__ = [
    "BENCHMARKS",
    "SOURCES",
    "Benchmark",
    "DatasetNotFoundError",
    "DownloadError",
    "Task",
    "TaskRequest",
    "Unlabeled",
    "benchmarks",
    "blobs_shift",
    "custom_task",
    "dataset_labels",
    "download_verified",
    "few_shot_split",
    "make_mnistm",
    "make_moons",
    "make_task",
    "moons_shift",
    "optdigits_shift",
    "optdigits_shifts",
    "published_ssda_split",
    "register_benchmark",
    "rotated_optdigits",
    "shift_digits",
    "show",
    "stratified_split",
    "subset",
    "task",
    "unlabeled",
]
