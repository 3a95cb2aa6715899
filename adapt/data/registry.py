"""The benchmark registry: ``benchmarks()`` lists them, ``task(...)`` builds a source -> target task."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from .base import DatasetNotFoundError, Protocol, Task, make_task
from .digits import DIGIT_CLASSES, DIGIT_DOMAINS, INPUT_SHAPES, LAYOUTS, load_digits_domain
from .images import IMAGE_BENCHMARKS, ImageList, imagenet_transform, load_image_domain, scan_folder
from .synthetic import (
    BLOB_SHIFTS,
    OPTDIGITS_ANGLES,
    OPTDIGITS_SHIFTS,
    blobs_shift,
    moons_shift,
    optdigits_shift,
    optdigits_shifts,
    rotated_optdigits,
)


@dataclass(frozen=True)
class Benchmark:
    name: str
    domains: tuple[str, ...]
    offline: bool
    protocol: Protocol
    description: str
    default_tasks: tuple[tuple[str, str], ...]


def _all_pairs(domains: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((s, t) for s in domains for t in domains if s != t)


BENCHMARKS: dict[str, Benchmark] = {
    "moons": Benchmark(
        "moons",
        ("source", "rotated"),
        True,
        "transductive",
        "DANN paper's inter-twinning moons, 150 points per moon; target rotated by `angle` (35) degrees",
        (("source", "rotated"),),
    ),
    **{
        f"blobs-{shift}": Benchmark(
            f"blobs-{shift}",
            ("source", "target"),
            True,
            "transductive",
            f"3-class Gaussian mixtures with a {shift} shift",
            (("source", "target"),),
        )
        for shift in BLOB_SHIFTS
    },
    "optdigits": Benchmark(
        "optdigits",
        ("optdigits", "optdigits-m"),
        True,
        "transductive",
        "scikit-learn's UCI digits -> the MNIST-M recipe with scikit-learn's bundled photos (disjoint halves)",
        (("optdigits", "optdigits-m"),),
    ),
    "rotated-optdigits": Benchmark(
        "rotated-optdigits",
        tuple(str(a) for a in OPTDIGITS_ANGLES),
        True,
        "transductive",
        "UCI digits rotated by 0..75 degrees, a disjoint part per angle (the RotatedMNIST idea)",
        (("0", "45"), ("0", "75")),
    ),
    "optdigits-shifts": Benchmark(
        "optdigits-shifts",
        OPTDIGITS_SHIFTS,
        True,
        "transductive",
        "UCI digits, gray 16x16, disjoint halves; one image shift per domain: scale, noise, blur, contrast, "
        "thick strokes, or a label shift (imbalanced)",
        tuple(("clean", d) for d in OPTDIGITS_SHIFTS[1:]),
    ),
    "digits": Benchmark(
        "digits",
        DIGIT_DOMAINS,
        False,
        "inductive",
        "MNIST, USPS, SVHN, MNIST-M (official train split as training data, official test split scored)",
        (("mnist", "usps"), ("usps", "mnist"), ("svhn", "mnist"), ("mnist", "mnistm")),
    ),
    **{
        name: Benchmark(
            name,
            tuple(spec["domains"]),
            False,
            "inductive" if name.startswith("domainnet") else "transductive",
            f"{name}: {spec['num_classes']} classes; layout {spec['layout'].splitlines()[0]}",
            _all_pairs(tuple(spec["domains"])) if name != "visda2017" else (("train", "validation"),),
        )
        for name, spec in IMAGE_BENCHMARKS.items()
    },
}


def benchmarks() -> dict[str, Benchmark]:
    """All registered benchmarks by name."""
    return dict(BENCHMARKS)


def _tensor_pair(x: np.ndarray, y: np.ndarray) -> TensorDataset:
    return TensorDataset(
        torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(y.astype(np.int64))
    )


def _offline_domains(name: str, source: str, target: str, data_seed: int, options: dict[str, Any]):
    if name == "moons":
        xs, ys, xt, yt = moons_shift(
            options.get("n_per_moon", 150), options.get("angle", 35.0), options.get("noise", 0.1), data_seed
        )
        return _tensor_pair(xs, ys), _tensor_pair(xt, yt), ["upper moon", "lower moon"], (2,)
    if name.startswith("blobs-"):
        shift = name.split("-", 1)[1]
        dim = options.get("dim", 3 if shift == "subspace" else 2)
        xs, ys, xt, yt = blobs_shift(
            shift, options.get("n_per_class", 100), options.get("num_classes", 3), dim, data_seed
        )
        return _tensor_pair(xs, ys), _tensor_pair(xt, yt), [f"class {i}" for i in range(int(ys.max()) + 1)], (dim,)
    if name == "optdigits":
        xs, ys, xt, yt = optdigits_shift(data_seed)
        return _tensor_pair(xs, ys), _tensor_pair(xt, yt), DIGIT_CLASSES, (3, 16, 16)
    if name == "optdigits-shifts":
        xs, ys, xt, yt = optdigits_shifts(source, target, data_seed)
        return _tensor_pair(xs, ys), _tensor_pair(xt, yt), DIGIT_CLASSES, (1, 16, 16)
    domains = rotated_optdigits(data_seed)
    xs, ys = domains[int(source)]
    xt, yt = domains[int(target)]
    return _tensor_pair(xs, ys), _tensor_pair(xt, yt), DIGIT_CLASSES, (1, 16, 16)


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
    digits_protocol: str | None = None,
    **options: Any,
) -> Task:
    """Build the task ``source -> target`` of a registered benchmark.

    Parameters
    ----------
    benchmark : a name from :func:`benchmarks` ('moons', 'blobs-conditional', 'optdigits',
        'rotated-optdigits', 'digits', 'office31', 'officehome', 'visda2017', 'domainnet',
        'domainnet126').
    source, target : domain names of that benchmark.
    root : data folder for the downloadable benchmarks (unused by the offline ones).
    protocol : 'transductive' or 'inductive'; default: the benchmark's usual protocol.
    seed : seeds the generated data (offline benchmarks) and the inductive target split.
    test_fraction : target test fraction of the inductive split (when there is no official one).
    source_holdout : fraction of the source kept apart as a labeled validation split.
    download : fetch missing data (verified checksums) instead of failing.
    digits_protocol : 'lenet' (28x28 gray) or 'dtn' (32x32 RGB) for 'digits'; default: 'dtn' when
        SVHN or MNIST-M is involved, else 'lenet'.
    **options : generator options of the offline benchmarks (``angle``, ``n_per_moon``, ...).
    """
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; available: {', '.join(sorted(BENCHMARKS))}")
    spec = BENCHMARKS[benchmark]
    for role, domain in (("source", source), ("target", target)):
        if domain not in spec.domains:
            raise ValueError(f"unknown {benchmark} {role} domain {domain!r}; choose one of {', '.join(spec.domains)}")
    if source == target:
        raise ValueError(f"source and target are the same domain ({source!r})")
    protocol = protocol or spec.protocol
    common = dict(protocol=protocol, seed=seed, test_fraction=test_fraction, source_holdout=source_holdout)
    if spec.offline:
        unknown = sorted(set(options) - {"angle", "n_per_moon", "noise", "n_per_class", "num_classes", "dim"})
        if unknown:
            raise ValueError(f"unknown option(s) for {benchmark}: {', '.join(unknown)}")
        src, tgt, classes, shape = _offline_domains(benchmark, source, target, seed, options)
        return make_task(benchmark, source, src, target, tgt, classes, shape, description=spec.description, **common)
    if options:
        raise ValueError(f"unknown option(s) for {benchmark}: {', '.join(sorted(options))}")
    if root is None:
        raise ValueError(f"{benchmark} needs a data root folder (root=...)")
    root = Path(root)
    if benchmark == "digits":
        dp = digits_protocol or ("dtn" if {"svhn", "mnistm"} & {source, target} else "lenet")
        src = load_digits_domain(source, root, train=True, protocol=dp, download=download)  # type: ignore[arg-type]
        tgt = load_digits_domain(target, root, train=True, protocol=dp, download=download)  # type: ignore[arg-type]
        tgt_test = load_digits_domain(target, root, train=False, protocol=dp) if protocol == "inductive" else None
        return make_task(
            benchmark,
            source,
            src,
            target,
            tgt,
            DIGIT_CLASSES,
            INPUT_SHAPES[dp],
            target_test_data=tgt_test,
            description=f"{spec.description}; {dp} preprocessing",
            **common,
        )
    return _image_task(benchmark, source, target, root, download, spec, common)


def _image_task(
    benchmark: str, source: str, target: str, root: Path, download: bool, spec: Benchmark, common: dict
) -> Task:
    info = IMAGE_BENCHMARKS[benchmark]
    layout = info["layout"].replace("<root>", str(root))
    train_tf, eval_tf = imagenet_transform(True), imagenet_transform(False)

    def load(domain: str, split: str = "all") -> ImageList:
        try:
            samples, classes = load_image_domain(benchmark, domain, root, split)
        except FileNotFoundError as exc:
            if download and info["download"]:
                from .download import fetch

                fetch(info["download"], root, layout)
                samples, classes = load_image_domain(benchmark, domain, root, split)
            else:
                how = (
                    "pass download=True (or --download) to fetch it"
                    if info["download"]
                    else ("download it by hand from the URLs in adapt/data/sources.py")
                )
                raise DatasetNotFoundError(
                    f"{benchmark} domain {domain!r} not found ({exc}).\nExpected layout:\n{layout}\nOr {how}."
                ) from exc
        return ImageList(samples, classes, train_tf)

    official_split = benchmark.startswith("domainnet") and common["protocol"] == "inductive"
    src = load(source, "train" if official_split else "all")
    tgt = load(target, "train" if official_split else "all")
    tgt_test = load(target, "test").with_transform(eval_tf) if official_split else None
    return make_task(
        benchmark,
        source,
        src,
        target,
        tgt,
        src.classes,
        (3, 224, 224),
        target_test_data=tgt_test,
        target_eval_data=tgt.with_transform(eval_tf),
        source_eval_data=src.with_transform(eval_tf),
        description=spec.description,
        **common,
    )


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
    from .base import dataset_labels

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


__all__ = ["BENCHMARKS", "LAYOUTS", "Benchmark", "benchmarks", "custom_task", "task"]
