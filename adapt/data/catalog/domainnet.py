"""DomainNet (Peng et al., ICCV 2019), 345 classes in 6 domains, and its 126-class, 4-domain subset
(Saito et al., ICCV 2019); the official image lists define the train and test splits."""

from __future__ import annotations

from pathlib import Path

from ..base import Task
from ..benchmark import Benchmark, TaskRequest, all_pairs, register_benchmark
from ..images import IMAGE_OPTIONS, classes_from_samples, image_task, read_image_list


def _layout(suffix: str) -> str:
    return (
        f"<root>/domainnet/<domain>{suffix}_{{train,test}}.txt with lines '<domain>/<class>/<image>.jpg <label>',\n"
        "and the images at <root>/domainnet/<domain>/<class>/<image>.jpg"
    )


def _loader(suffix: str, num_classes: int):
    def load_domain(root: Path, domain: str, split: str) -> tuple[list[tuple[str, int]], list[str]]:
        base = root / "domainnet"
        parts = ["train", "test"] if split == "all" else [split]
        samples = [s for part in parts for s in read_image_list(base / f"{domain}{suffix}_{part}.txt", base)]
        return samples, classes_from_samples(samples, num_classes)

    return load_domain


def _register(name: str, domains: tuple[str, ...], suffix: str, num_classes: int, download: str | None) -> None:
    load, layout = _loader(suffix, num_classes), _layout(suffix)

    def build(request: TaskRequest) -> Task:
        return image_task(request, load, layout, download=download, official_split=True)

    register_benchmark(
        Benchmark(
            name=name,
            domains=domains,
            protocol="inductive",
            description=f"{name}: {num_classes} classes; layout {layout.splitlines()[0]}",
            default_tasks=all_pairs(domains),
            offline=False,
            options=IMAGE_OPTIONS,
            build=build,
            files=layout,
        )
    )


# The full DomainNet has no published checksum, so it is never fetched automatically.
_register("domainnet", ("clipart", "infograph", "painting", "quickdraw", "real", "sketch"), "", 345, None)
_register("domainnet126", ("clipart", "painting", "real", "sketch"), "126", 126, "domainnet126")
