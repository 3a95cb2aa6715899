"""CIFAR-10-C (Hendrycks & Dietterich, ICLR 2019): the CIFAR-10 test images under 19 corruptions at 5 severities.

The source domain ``clean`` is the CIFAR-10 training set (torchvision's ``cifar-10-batches-py``
layout, read here directly); a target ``<corruption>-<severity>`` is that corruption's block of
10,000 images in the released ``CIFAR-10-C/<corruption>.npy``. Images are scaled to [0, 1] and
standardized with the CIFAR-10 training mean and standard deviation. A target may be a sequence of
corruptions for continual test-time adaptation (``all-<severity>``: the 15 at one severity, in the
benchmark's order; ``all-5x10``; ``gradual``), as ``optdigits-c``'s; its images stay uint8 in memory
(the 75 blocks of ``gradual`` are 2.3 GB so) and are standardized as they are read.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..base import DatasetNotFoundError, TargetDomains, Task, make_task
from ..benchmark import BENCHMARKS, Benchmark, TaskRequest, array_task, register_benchmark, tensor_pair
from ..corruptions import CORRUPTIONS, SEQUENCE_DOMAINS, domain_sequence
from ..download import check_unpacked, fetch

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
#: The four corruptions the release adds to the 15 of the benchmark (for validation, in the paper).
EXTRA_CORRUPTIONS = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
SEVERITIES = (1, 2, 3, 4, 5)
DOMAINS = ("clean", *(f"{c}-{s}" for c in (*CORRUPTIONS, *EXTRA_CORRUPTIONS) for s in SEVERITIES), *SEQUENCE_DOMAINS)
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
LAYOUT = (
    "<root>/cifar-10-batches-py/{data_batch_1..5,test_batch}  (torchvision's CIFAR-10 layout: pickled dicts with "
    "b'data' (N, 3072) uint8 and b'labels')\n"
    "<root>/CIFAR-10-C/<corruption>.npy  ((50000, 32, 32, 3) uint8: severities 1 to 5 in blocks of 10000) and "
    "<root>/CIFAR-10-C/labels.npy  (50000,)"
)


def read_cifar10(root: Path, train: bool, download: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 images (N, 32, 32, 3) uint8 and labels (N,); with ``download``, torchvision fetches the
    archive first (its URL and MD5)."""
    folder = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    if download and not all((folder / n).exists() for n in names):
        from torchvision.datasets import CIFAR10

        CIFAR10(str(root), train=train, download=True)
    images, labels = [], []
    for name in names:
        path = folder / name
        if not path.exists():
            raise DatasetNotFoundError(f"CIFAR-10 not found: missing {path}")
        with open(path, "rb") as handle:
            try:
                batch = pickle.load(handle, encoding="bytes")
                data, batch_labels = np.asarray(batch[b"data"], np.uint8), np.asarray(batch[b"labels"], np.int64)
            except (pickle.UnpicklingError, KeyError, TypeError, EOFError) as exc:
                raise ValueError(f"{path} is not a CIFAR-10 batch (pickled b'data', b'labels'): {exc}") from exc
        if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(batch_labels):
            raise ValueError(f"{path}: expected b'data' of shape (N, 3072) and N labels, got {data.shape}, "
                             f"{len(batch_labels)} labels")  # fmt: skip
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(batch_labels)
    return np.concatenate(images), np.concatenate(labels)


def read_cifar10_c(root: Path, domain: str) -> tuple[np.ndarray, np.ndarray]:
    """One corruption at one severity: (10000, 32, 32, 3) uint8 images and their labels."""
    corruption, _, severity = domain.rpartition("-")
    folder = root / "CIFAR-10-C"
    images_path, labels_path = folder / f"{corruption}.npy", folder / "labels.npy"
    for path in (images_path, labels_path):
        if not path.exists():
            raise DatasetNotFoundError(f"CIFAR-10-C not found: missing {path}")
    images, labels = np.load(images_path, mmap_mode="r"), np.load(labels_path, mmap_mode="r")
    if images.ndim != 4 or images.shape[1:] != (32, 32, 3) or images.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected (N, 32, 32, 3) uint8, got {images.shape} {images.dtype}")
    if len(images) != len(labels) or len(images) % len(SEVERITIES):
        raise ValueError(f"{images_path}: {len(images)} images and {len(labels)} labels; the release has the same "
                         "number of each, in 5 equal severity blocks")  # fmt: skip
    block = len(images) // len(SEVERITIES)
    rows = slice((int(severity) - 1) * block, int(severity) * block)
    return np.array(images[rows]), np.array(labels[rows], dtype=np.int64)


def _standardized(images: np.ndarray) -> np.ndarray:
    x = images.astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    return (x - np.asarray(MEAN, np.float32)[:, None, None]) / np.asarray(STD, np.float32)[:, None, None]


class StandardizedBlocks(Dataset):
    """Stretches of uint8 images (N, 32, 32, 3) in sequence, standardized as they are read: the target of a
    sequence domain without a float copy of every stretch (a domain repeated in the sequence is stored once)."""

    def __init__(self, blocks: dict[str, tuple[np.ndarray, np.ndarray]], sequence: list[str]) -> None:
        self.names = list(blocks)
        self.images = [blocks[name][0] for name in self.names]
        self.labels = torch.from_numpy(np.concatenate([blocks[name][1] for name in sequence]).astype(np.int64))
        block_of = {name: i for i, name in enumerate(self.names)}
        self.block = np.concatenate([np.full(len(blocks[name][0]), block_of[name]) for name in sequence])
        self.row = np.concatenate([np.arange(len(blocks[name][0])) for name in sequence])

    def __len__(self) -> int:
        return len(self.row)

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        images = np.stack([self.images[self.block[i]][self.row[i]] for i in indices])
        x = torch.from_numpy(_standardized(images))
        return list(zip(x, self.labels[indices], strict=True))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.__getitems__([index])[0]


def _domain(request: TaskRequest, name: str, as_source: bool) -> tuple[np.ndarray, np.ndarray]:
    root = request.root
    assert root is not None
    layout = LAYOUT.replace("<root>", str(root))
    try:
        if name == "clean":
            return read_cifar10(root, train=as_source, download=request.download)
        check_unpacked("cifar10-c", root)
        try:
            return read_cifar10_c(root, name)
        except DatasetNotFoundError:
            if not request.download:
                raise
            fetch("cifar10-c", root, layout)
            return read_cifar10_c(root, name)
    except DatasetNotFoundError as exc:
        raise DatasetNotFoundError(f"{exc}.\nExpected layout:\n{layout}\nOr pass download=True (or --download) to "
                                   "fetch it (checksums verified).") from exc  # fmt: skip


def build(request: TaskRequest) -> Task:
    """``clean`` as the source is CIFAR-10's training set; as the target, its test set."""
    if domain_sequence(request.source) is not None:
        raise ValueError(f"cifar10-c domain {request.source!r} is a sequence of corruptions: a target, not a source")
    xs, ys = _domain(request, request.source, as_source=True)
    sequence = domain_sequence(request.target)
    if sequence is None:
        xt, yt = _domain(request, request.target, as_source=False)
        return array_task(request, (_standardized(xs), ys), (_standardized(xt), yt), CLASSES, (3, 32, 32))
    blocks = {domain: _domain(request, domain, as_source=False) for domain in dict.fromkeys(sequence)}
    task = make_task(
        request.benchmark, request.source, tensor_pair(_standardized(xs), ys), request.target,
        StandardizedBlocks(blocks, sequence), CLASSES, (3, 32, 32),
        description=BENCHMARKS[request.benchmark].description, **request.split_options(),
    )  # fmt: skip
    # which stretch of the target each example belongs to (the online protocol streams them)
    task.extra["target_domains"] = TargetDomains(sequence, np.repeat(np.arange(len(sequence)),
                                                                    [len(blocks[d][0]) for d in sequence]))  # fmt: skip
    return task


register_benchmark(
    Benchmark(
        name="cifar10-c",
        domains=DOMAINS,
        protocol="transductive",
        description="CIFAR-10 -> CIFAR-10-C (Hendrycks & Dietterich 2019): 10 classes, 32x32 RGB; a target is "
        "'<corruption>-<severity>', or a sequence of them (all-<severity>, all-5x10, gradual)",
        default_tasks=tuple(("clean", f"{c}-5") for c in CORRUPTIONS),
        offline=False,
        build=build,
        files=LAYOUT,
    )
)
