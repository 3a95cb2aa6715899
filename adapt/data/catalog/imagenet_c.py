"""ImageNet-C (Hendrycks & Dietterich, ICLR 2019): the ImageNet validation images under corruptions.

Arranged by hand (the release is several large archives): the source ``clean`` is an ImageNet
training folder, a target ``<corruption>-<severity>`` is the release's folder of that corruption and
severity, both with one sub-folder per WordNet id. Classes are the source's folders, sorted (the
torchvision ``ImageFolder`` order that pretrained ImageNet classifiers use). ImageNet-C images are
already 224 x 224 center crops: the target is only converted and normalized, never resized. A target
may be a sequence of corruptions for continual test-time adaptation (``all-<severity>``: the 15 at one
severity, in the benchmark's order; ``all-5x10``; ``gradual``), as ``optdigits-c``'s.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torchvision.transforms as T

from ..base import DatasetNotFoundError, TargetDomains, Task, make_task
from ..benchmark import Benchmark, TaskRequest, register_benchmark
from ..corruptions import CORRUPTIONS, SEQUENCE_DOMAINS, domain_sequence
from ..images import IMAGENET_MEAN, IMAGENET_STD, ImageList, imagenet_transform, scan_folder
from .cifar10_c import EXTRA_CORRUPTIONS, SEVERITIES

DOMAINS = ("clean", *(f"{c}-{s}" for c in (*CORRUPTIONS, *EXTRA_CORRUPTIONS) for s in SEVERITIES), *SEQUENCE_DOMAINS)
LAYOUT = (
    "<root>/imagenet/train/<wnid>/<image>.JPEG  (the ImageNet training set, 1000 class folders: the source; "
    "imagenet/val/<wnid>/ likewise, for 'clean' as a target)\n"
    "<root>/ImageNet-C/<corruption>/<severity>/<wnid>/<image>.JPEG  (as the release unpacks, e.g. "
    "ImageNet-C/gaussian_noise/5/n01440764/...)"
)


def domain_folder(root: Path, domain: str, as_source: bool) -> Path:
    """``clean`` is ImageNet's training folder as the source, its validation folder as the target."""
    if domain == "clean":
        return root / "imagenet" / ("train" if as_source else "val")
    corruption, _, severity = domain.rpartition("-")
    return root / "ImageNet-C" / corruption / severity


def build(request: TaskRequest) -> Task:
    root = request.root
    assert root is not None
    layout = LAYOUT.replace("<root>", str(root))
    if domain_sequence(request.source) is not None:
        raise ValueError(f"imagenet-c domain {request.source!r} is a sequence of corruptions: a target, not a source")
    sequence = domain_sequence(request.target) or [request.target]
    try:
        source, classes = scan_folder(domain_folder(root, request.source, as_source=True))
        stretches = {domain: scan_folder(domain_folder(root, domain, as_source=False), classes)[0]
                     for domain in dict.fromkeys(sequence)}  # fmt: skip
    except FileNotFoundError as exc:
        raise DatasetNotFoundError(
            f"imagenet-c domain not found ({exc}).\nExpected layout:\n{layout}\nImageNet and ImageNet-C are arranged "
            "by hand (ImageNet needs a licence; ImageNet-C: https://zenodo.org/records/2235448)."
        ) from exc
    normalize = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    source_data = ImageList(source, classes, imagenet_transform(True))
    target = [sample for domain in sequence for sample in stretches[domain]]
    target_data = ImageList(target, classes, T.Compose([T.ToTensor(), normalize]))
    task = make_task(
        request.benchmark, request.source, source_data, request.target, target_data, classes, (3, 224, 224),
        source_eval_data=source_data.with_transform(imagenet_transform(False)),
        description=BENCHMARKS_DESCRIPTION, **request.split_options(),
    )  # fmt: skip
    if len(sequence) > 1:  # which stretch of the target each example belongs to (the online protocol streams them)
        ids = np.concatenate([np.full(len(stretches[d]), i) for i, d in enumerate(sequence)])
        task.extra["target_domains"] = TargetDomains(sequence, ids)
    return task


BENCHMARKS_DESCRIPTION = "ImageNet -> ImageNet-C (Hendrycks & Dietterich 2019): 1000 classes; arranged by hand"

register_benchmark(
    Benchmark(
        name="imagenet-c",
        domains=DOMAINS,
        protocol="transductive",
        description=f"{BENCHMARKS_DESCRIPTION}; layout {LAYOUT}",
        default_tasks=tuple(("clean", f"{c}-5") for c in CORRUPTIONS),
        offline=False,
        build=build,
        files=LAYOUT,
    )
)
