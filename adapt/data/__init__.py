"""Datasets and domain-shift tasks.

>>> from adapt import data
>>> task = data.task("moons", "source", "rotated")           # offline, generated from a seed
>>> task = data.task("office31", "amazon", "webcam", root="~/data", download=True)  # doctest: +SKIP
>>> task = data.custom_task("photos/train", "photos/night")   # two ImageFolder dirs  # doctest: +SKIP
"""

from .base import DatasetNotFoundError, Task, Unlabeled, dataset_labels, make_task, stratified_split, subset, unlabeled
from .digits import make_mnistm
from .download import DownloadError, download_verified
from .registry import BENCHMARKS, Benchmark, benchmarks, custom_task, task
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

__all__ = [
    "BENCHMARKS",
    "SOURCES",
    "Benchmark",
    "DatasetNotFoundError",
    "DownloadError",
    "Task",
    "Unlabeled",
    "benchmarks",
    "blobs_shift",
    "custom_task",
    "dataset_labels",
    "download_verified",
    "make_mnistm",
    "make_moons",
    "make_task",
    "moons_shift",
    "optdigits_shift",
    "optdigits_shifts",
    "rotated_optdigits",
    "shift_digits",
    "show",
    "stratified_split",
    "subset",
    "task",
    "unlabeled",
]
