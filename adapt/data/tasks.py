"""Tasks by name (``task("moons", "source", "rotated")``) and from your own data (``custom_task``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from . import catalog as _catalog  # noqa: F401  (registers every benchmark)
from .base import DatasetNotFoundError, Protocol, Task, dataset_labels, make_task
from .benchmark import BENCHMARKS, TaskRequest
from .images import ImageList, imagenet_transform, scan_folder


def task(
    benchmark: str,
    source: str,
    target: str,
    root: str | os.PathLike[str] | None = None,
    *,
    protocol: Protocol | None = None,
    seed: int = 0,
    test_fraction: float = 0.3,
    source_holdout: float = 0.0,
    download: bool = False,
    **options: Any,
) -> Task:
    """Build the task ``source -> target`` of a registered benchmark.

    Parameters
    ----------
    benchmark : a name from :func:`~adapt.data.benchmark.benchmarks` ('moons', 'blobs-conditional',
        'optdigits', 'rotated-optdigits', 'optdigits-shifts', 'digits', 'office31', 'officehome',
        'visda2017', 'domainnet', 'domainnet126').
    source, target : domain names of that benchmark.
    root : data folder for the benchmarks that read files (unused by the offline ones).
    protocol : 'transductive' or 'inductive'; default: the benchmark's usual protocol.
    seed : seeds the generated data (offline benchmarks) and the inductive target split.
    test_fraction : target test fraction of the inductive split (when there is no official one).
    source_holdout : fraction of the source kept apart as a labeled validation split.
    download : fetch missing data (verified checksums) instead of failing.
    **options : the benchmark's own options (``Benchmark.options``): generator settings of the offline
        ones (``angle``, ``n_per_moon``, ...), ``digits_protocol`` ('lenet' or 'dtn') for 'digits'.

    >>> t = task("moons", "source", "rotated", angle=50)
    >>> t.name, t.protocol, len(t.source_train)
    ('moons/source->rotated', 'transductive', 300)
    """
    spec = BENCHMARKS.get(benchmark)
    for role, domain in (("source", source), ("target", target)):
        if domain not in spec.domains:
            raise ValueError(f"unknown {benchmark} {role} domain {domain!r}; choose one of {', '.join(spec.domains)}")
    if source == target:
        raise ValueError(f"source and target are the same domain ({source!r})")
    options = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(options) - spec.options)
    if unknown:
        allowed = ", ".join(sorted(spec.options)) or "none"
        raise ValueError(f"unknown option(s) for {benchmark}: {', '.join(unknown)}; its options: {allowed}")
    if not spec.offline and root is None:
        raise ValueError(f"{benchmark} needs a data root folder (root=...)")
    request = TaskRequest(
        benchmark, source, target, None if root is None else Path(root).expanduser(), protocol or spec.protocol,
        seed, test_fraction, source_holdout, download, options,
    )  # fmt: skip
    return spec.build(request)


def custom_task(
    source: Any,
    target: Any,
    *,
    classes: list[str] | None = None,
    protocol: Protocol = "transductive",
    seed: int = 0,
    test_fraction: float = 0.3,
    source_holdout: float = 0.0,
    image_size: int = 224,
    name: str = "custom",
) -> Task:
    """A task from your own data, in one call.

    ``source`` and ``target`` may each be an ImageFolder-style directory (``<dir>/<class>/<image>``;
    both must have the same class folders), a labeled torch Dataset yielding ``(x, y)``, or a pair
    ``(x, y)`` of arrays/tensors. The target's labels are only used for scoring.
    """

    def as_dataset(
        data: Any, role: str, class_names: list[str] | None
    ) -> tuple[Dataset, Dataset, list[str] | None, tuple[int, ...] | None]:
        if isinstance(data, (str, os.PathLike)):
            path = Path(data)
            if not path.is_dir():
                raise DatasetNotFoundError(f"{role} folder {path} does not exist; expected <folder>/<class>/<image>")
            samples, found = scan_folder(path, class_names)
            images = ImageList(samples, found, imagenet_transform(True, image_size, int(image_size * 256 / 224)))
            evaluation = images.with_transform(imagenet_transform(False, image_size, int(image_size * 256 / 224)))
            return images, evaluation, found, (3, image_size, image_size)
        if isinstance(data, (tuple, list)) and len(data) == 2:
            x, y = (torch.as_tensor(np.asarray(v)) for v in data)
            ds = TensorDataset(x.float(), y.long())
            return ds, ds, None, tuple(x.shape[1:])
        if isinstance(data, Dataset):
            x0 = data[0][0]
            shape = tuple(x0.shape) if isinstance(x0, (torch.Tensor, np.ndarray)) else None
            return data, data, getattr(data, "classes", None), shape
        raise TypeError(f"{role}: pass a folder path, a Dataset or an (x, y) pair; got {type(data).__name__}")

    src, src_eval, src_classes, shape = as_dataset(source, "source", classes)
    tgt, tgt_eval, _, _ = as_dataset(target, "target", classes or src_classes)
    labels = np.concatenate([dataset_labels(src), dataset_labels(tgt)])
    class_names = classes or src_classes or [str(i) for i in range(int(labels.max()) + 1)]
    return make_task(
        name,
        "source",
        src,
        "target",
        tgt,
        class_names,
        shape or (),
        protocol=protocol,
        seed=seed,
        test_fraction=test_fraction,
        source_holdout=source_holdout,
        target_eval_data=tgt_eval,
        source_eval_data=src_eval,
        description="user-provided data",
    )


__all__ = ["custom_task", "task"]
