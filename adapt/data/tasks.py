"""Tasks by name (``task("moons", "source", "rotated")``) and from your own data (``custom_task``)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision.transforms as T
from torch.utils.data import Dataset, TensorDataset

from ..errors import InputError
from . import catalog as _catalog  # noqa: F401  (registers every benchmark)
from .base import DatasetNotFoundError, Protocol, Task, dataset_labels, is_labeled, make_task
from .benchmark import BENCHMARKS, TaskRequest
from .images import IMAGENET_MEAN, IMAGENET_STD, ImageList, imagenet_transform, load_image, scan_folder


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
        'optdigits', 'rotated-optdigits', 'optdigits-shifts', 'optdigits-c', 'digits', 'office31', 'officehome',
        'visda2017', 'domainnet', 'domainnet126').
    source, target : domain names of that benchmark.
    root : data folder for the benchmarks that read files (unused by the offline ones).
    protocol : 'transductive' or 'inductive'; default: the benchmark's usual protocol.
    seed : seeds the generated data (offline benchmarks) and the inductive target split.
    test_fraction : target test fraction of the inductive split (when there is no official one).
    source_holdout : fraction of the source kept apart as a labeled validation split.
    download : fetch missing data (verified checksums) instead of failing.
    **options : the benchmark's own options (``Benchmark.options``): generator settings of the offline
        ones (``angle``, ``n_per_moon``, ...), ``digits_protocol`` ('lenet' or 'dtn') for 'digits',
        ``image_cache`` and ``image_cache_workers`` for the image benchmarks (:mod:`adapt.data.cache`).

    Examples
    --------
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
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        allowed = ", ".join(sorted(spec.options)) or "none"
        raise ValueError(f"unknown option(s) for {benchmark}: {', '.join(unknown)}; its options: {allowed}")
    if not spec.offline and root is None:
        raise ValueError(f"{benchmark} needs a data root folder (root=...)")
    request = TaskRequest(
        benchmark, source, target, None if root is None else Path(root).expanduser(), protocol or spec.protocol,
        seed, test_fraction, source_holdout, download, {**spec.options, **options},
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
    augment: str | Callable[[Any], Any] = "crop+flip",
    backbone: Any = None,
) -> Task:
    """A task from your own data, in one call.

    ``source`` (labeled) may be an ImageFolder-style directory (``<dir>/<class>/<image>``), a torch
    Dataset yielding ``(x, y)``, or a pair ``(x, y)`` of arrays/tensors. ``target`` may be any of
    those, or **unlabeled**: an array/tensor ``x``, a pair ``(x, None)``, or a Dataset yielding ``x``
    alone. Target labels, when given, are only used for scoring (``task.target_test``); an unlabeled
    target has ``target_test = None`` and needs the transductive protocol.

    Image folders are read through two views, named in ``task.extra["views"]``: the **training view**
    (``task.source_train``, ``task.target_train``) and the **evaluation view** (``task.source_train_eval``,
    ``task.target_eval``: resized to ``image_size / 0.875``, center-cropped; what label-free selection should
    score: ``fit(..., target_eval=task.target_eval)``). ``augment`` is the training view: ``"crop+flip"``
    (the ImageNet recipe, the default), ``"crop"`` (no flip: digits, text), ``"none"``, or a transform (PIL
    image -> tensor); ImageNet's mean and std normalize both. A ``backbone`` with views of its own (timm,
    CLIP) gives its input size, crop and interpolation instead. Much smaller images are upscaled, with a warning.

    >>> import numpy as np
    >>> xs, ys, xt = np.zeros((8, 3)), np.arange(8) % 2, np.ones((5, 3))
    >>> t = custom_task((xs, ys), xt)            # unlabeled target
    >>> len(t.target_train), t.target_test, t.classes
    (5, None, ['0', '1'])
    """
    views = _image_views(augment, backbone, image_size)
    src, src_eval, src_classes, shape = _custom_dataset(source, "source", classes, views)
    tgt, tgt_eval, _, _ = _custom_dataset(target, "target", classes or src_classes, views)
    if not is_labeled(src):
        raise InputError("source must be labeled: pass (x, y), a Dataset yielding (x, y) or a class-folder path")
    labels = [dataset_labels(src)] + ([dataset_labels(tgt)] if is_labeled(tgt) else [])
    class_names = classes or src_classes or [str(i) for i in range(int(np.concatenate(labels).max()) + 1)]
    made = make_task(name, "source", src, "target", tgt, class_names, shape or (), protocol=protocol, seed=seed,
                     test_fraction=test_fraction, source_holdout=source_holdout, target_eval_data=tgt_eval,
                     source_eval_data=src_eval, description="user-provided data")  # fmt: skip
    if isinstance(source, (str, os.PathLike)) or isinstance(target, (str, os.PathLike)):
        made.extra["views"] = {"train": repr(views[0]), "eval": repr(views[1])}
    return made


def _image_views(augment: Any, backbone: Any, image_size: int) -> tuple[Any, Any, int]:
    """(training view, evaluation view, image size) of image folders: the backbone's own views when it has
    them, else the ImageNet recipe with ``augment``'s training view."""
    if backbone is not None and callable(getattr(backbone, "eval_transform", None)):
        size = int(getattr(backbone, "data_config", {}).get("input_size", (3, image_size, image_size))[-1])
        train = augment if callable(augment) else backbone.train_transform(augment) if hasattr(
            backbone, "train_transform") else backbone.eval_transform()  # fmt: skip
        return train, backbone.eval_transform(), size
    resize = int(image_size * 256 / 224)
    evaluation = imagenet_transform(False, image_size, resize)
    if callable(augment):
        return augment, evaluation, image_size
    crop = [T.Resize(resize), T.RandomResizedCrop(image_size), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    recipes = {"crop+flip": imagenet_transform(True, image_size, resize), "crop": T.Compose(crop), "none": evaluation}
    if augment not in recipes:
        raise ValueError(f"augment must be 'crop+flip', 'crop', 'none' or a transform, got {augment!r}")
    return recipes[augment], evaluation, image_size


def _custom_dataset(
    data: Any, role: str, class_names: list[str] | None, views: tuple[Any, Any, int]
) -> tuple[Dataset, Dataset, list[str] | None, tuple[int, ...] | None]:
    """One domain of :func:`custom_task`: dataset, its evaluation view, class names and input shape."""
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.is_dir():
            raise DatasetNotFoundError(f"{role} folder {path} does not exist; expected <folder>/<class>/<image>")
        samples, found = scan_folder(path, class_names)
        train, evaluation, size = views
        width, height = load_image(samples[0][0]).size
        if min(width, height) * 2 <= size:
            warnings.warn(f"the {role} images are {width}x{height} (the first of {path}) and are upscaled to "
                          f"{size}x{size}; for small images pass image_size={min(width, height)} (and a backbone "
                          "made for that size), or resize them yourself", stacklevel=3)  # fmt: skip
        images = ImageList(samples, found, train)
        return images, images.with_transform(evaluation), found, (3, size, size)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x = _float_tensor(data[0], f"{role} x")
        if data[1] is None:
            ds = TensorDataset(x)
        else:
            y = torch.as_tensor(np.asarray(data[1]))
            whole = not torch.is_floating_point(y) or bool((y == y.round()).all())  # 3.0 from a float column is fine
            if y.ndim != 1 or y.shape[0] != x.shape[0] or not whole or y.dtype == torch.bool:
                raise InputError(f"{role} labels must be {x.shape[0]} integers (one per row of x), got "
                                 f"shape {tuple(y.shape)} dtype {y.dtype}")  # fmt: skip
            ds = TensorDataset(x, y.long())
        return ds, ds, None, tuple(x.shape[1:])
    if isinstance(data, (torch.Tensor, np.ndarray)):
        x = _float_tensor(data, f"{role} x")
        return TensorDataset(x), TensorDataset(x), None, tuple(x.shape[1:])
    if isinstance(data, Dataset):
        first = data[0]
        x0 = first[0] if isinstance(first, (tuple, list)) else first
        shape = tuple(x0.shape) if isinstance(x0, (torch.Tensor, np.ndarray)) else None
        return data, data, getattr(data, "classes", None), shape
    alone = ", or inputs x alone (array, tensor or (x, None))" if role == "target" else ""
    raise InputError(f"{role}: pass a class-folder path, a Dataset, an (x, y) pair{alone}; got {type(data).__name__}")


def _float_tensor(value: Any, what: str) -> torch.Tensor:
    """Arrays and tensors as float32 tensors; anything else is an error naming ``what``."""
    if not isinstance(value, (torch.Tensor, np.ndarray)):
        raise InputError(f"{what} must be an array or a tensor, got {type(value).__name__}")
    tensor = torch.as_tensor(np.asarray(value) if isinstance(value, np.ndarray) else value)
    if tensor.dtype == torch.bool or torch.is_complex(tensor):
        raise InputError(f"{what} has dtype {tensor.dtype}; inputs must be numbers")
    return tensor.float()


__all__ = ["custom_task", "task"]
