"""Images read from folders or image-list files, and the task builder the image benchmarks share
(Office-31, Office-Home, VisDA-2017, DomainNet: see ``adapt/data/catalog/``)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T

from .base import DatasetNotFoundError, Task, make_task
from .benchmark import BENCHMARKS, TaskRequest
from .cache import CachedImages, cache_images
from .decode import IMAGE_EXTENSIONS, load_image
from .download import UnverifiedDataError, check_unpacked, fetch

#: Options every image benchmark accepts: ``image_cache`` ("memory", or a folder for memory-mapped
#: files that later runs reuse) decodes each image once and augments batches on the device
#: (:mod:`adapt.data.cache`); ``image_cache_workers`` decodes with that many processes.
IMAGE_OPTIONS = {"image_cache": None, "image_cache_workers": 0}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def imagenet_transform(train: bool, size: int = 224, resize: int = 256) -> Callable[[Image.Image], Any]:
    """The usual ImageNet preprocessing: train = resize 256, random resized crop 224, flip;
    evaluation = resize 256, center crop 224."""
    normalize = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    if train:
        return T.Compose(
            [T.Resize(resize), T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.ToTensor(), normalize]
        )
    return T.Compose([T.Resize(resize), T.CenterCrop(size), T.ToTensor(), normalize])


class ImageList(Dataset):
    """Images given by (path, label) pairs; ``targets`` lists the labels (no image is opened)."""

    def __init__(
        self, samples: list[tuple[str, int]], classes: list[str], transform: Callable[[Image.Image], Any] | None = None
    ) -> None:
        self.samples = samples
        self.targets = [label for _, label in samples]
        self.classes = classes
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path, label = self.samples[index]
        img = load_image(path)
        return (self.transform(img) if self.transform else img), label

    def with_transform(self, transform: Callable[[Image.Image], Any] | None) -> ImageList:
        """The same samples with another transform (for example evaluation instead of training)."""
        return ImageList(self.samples, self.classes, transform)


def scan_folder(
    root: str | os.PathLike[str], classes: list[str] | None = None
) -> tuple[list[tuple[str, int]], list[str]]:
    """``root/<class>/<image>`` -> samples and sorted class names (or the given class order)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no folder {root}")
    found = sorted(p.name for p in root.iterdir() if p.is_dir())
    classes = classes or found
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(found) - set(index))
    if unknown:
        raise ValueError(f"{root} has class folders not in the class list: {', '.join(unknown[:10])}")
    samples, empty = [], []
    for c in found:
        paths = sorted((root / c).rglob("*"))
        _warn_about_links(root, paths)
        images = [(str(path), index[c]) for path in paths if path.suffix.lower() in IMAGE_EXTENSIONS]
        empty += [] if images else [c]
        samples += images
    if not samples:
        raise ValueError(f"{root} holds no images ({', '.join(IMAGE_EXTENSIONS)}) in class folders")
    _refuse_unreadable(root, [Path(path) for path, _ in samples])
    if empty:
        warnings.warn(f"{root}: class folder(s) without images: {', '.join(empty[:10])}"
                      f"{' ...' if len(empty) > 10 else ''} (classes with no examples in this domain)",
                      stacklevel=2)  # fmt: skip
    return samples, classes


def _refuse_unreadable(root: Path, paths: list[Path]) -> None:
    """Images that can never be read -- links whose target is gone, files of 0 bytes -- are refused by
    name when the folder is scanned, not when a batch first draws them mid-training."""
    broken = [p for p in paths if not p.exists()]
    if broken:
        raise ValueError(f"{root}: {len(broken)} linked image(s) whose target is gone, e.g. "
                         f"{broken[0].relative_to(root)} -> {os.readlink(broken[0])}; remove them")  # fmt: skip
    blank = [p for p in paths if p.stat().st_size == 0]
    if blank:
        raise ValueError(f"{root}: {len(blank)} image file(s) of 0 bytes (an interrupted copy?), e.g. "
                         f"{blank[0].relative_to(root)}; remove or replace them")  # fmt: skip


def _warn_about_links(root: Path, paths: list[Path]) -> None:
    """Symbolic links in an image folder: linked folders are not followed, and linked files that point
    outside the folder are read from where they point; both are named, since neither is visible in the
    folder itself."""
    folders = [p for p in paths if p.is_symlink() and p.is_dir()]
    outside = [p for p in paths if p.is_symlink() and p.is_file() and not p.resolve().is_relative_to(root.resolve())]
    if folders:
        warnings.warn(f"{root}: linked folder(s) not followed (their images are left out): "
                      f"{', '.join(str(p.relative_to(root)) for p in folders[:5])}", stacklevel=3)  # fmt: skip
    if outside:
        warnings.warn(f"{root}: {len(outside)} linked file(s) point outside the folder and are read from there, "
                      f"e.g. {outside[0].relative_to(root)} -> {outside[0].resolve()}", stacklevel=3)  # fmt: skip


def read_image_list(list_file: str | os.PathLike[str], image_root: str | os.PathLike[str]) -> list[tuple[str, int]]:
    """Lines ``relative/path.jpg label`` (VisDA-2017, DomainNet) -> samples with absolute paths."""
    samples = []
    with open(list_file) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise ValueError(f"{list_file}:{lineno}: expected '<path> <integer label>', got {line.strip()!r}")
            samples.append((os.path.join(image_root, parts[0]), int(parts[1])))
    if not samples:
        raise ValueError(f"{list_file} lists no images")
    return samples


#: ``load(root, domain, split) -> (samples, class names)``; split is 'all', 'train' or 'test'.
DomainLoader = Callable[[Path, str, str], tuple[list[tuple[str, int]], list[str]]]


def classes_from_samples(samples: list[tuple[str, int]], num_classes: int) -> list[str]:
    """Class names from the parent folder of each label's first image (``<class>/<image>``)."""
    names: dict[int, str] = {}
    for path, label in samples:
        names.setdefault(label, Path(path).parent.name)
    return [names.get(i, str(i)) for i in range(num_classes)]


def image_task(
    request: TaskRequest, load: DomainLoader, layout: str, download: str | None, official_split: bool = False
) -> Task:
    """A task of an image benchmark whose domains ``load`` reads from ``request.root``.

    ``layout`` (with ``<root>``) is shown when files are missing; ``download`` names the entry of
    :data:`adapt.data.sources.SOURCES` to fetch with ``download=True`` (None: fetch by hand).
    ``official_split``: the benchmark's lists define train/test splits, used under the inductive protocol.
    """
    assert request.root is not None
    root = request.root
    layout = layout.replace("<root>", str(root))
    train_tf, eval_tf = imagenet_transform(True), imagenet_transform(False)

    def domain(name: str, split: str) -> ImageList:
        try:
            if download:
                check_unpacked(download, root)
            samples, classes = load(root, name, split)
        except FileNotFoundError as exc:
            if isinstance(exc, UnverifiedDataError) and not request.download:
                raise  # its message says how to repair the folder
            if not (request.download and download):
                how = "pass download=True (or --download) to fetch it" if download else (
                    "download it by hand from the URLs in adapt/data/sources.py")  # fmt: skip
                raise DatasetNotFoundError(
                    f"{request.benchmark} domain {name!r} not found ({exc}).\nExpected layout:\n{layout}\nOr {how}."
                ) from exc

            fetch(download, root, layout)
            samples, classes = load(root, name, split)
        return ImageList(samples, classes, train_tf)

    split = official_split and request.protocol == "inductive"
    src: ImageList | CachedImages = domain(request.source, "train" if split else "all")
    tgt: ImageList | CachedImages = domain(request.target, "train" if split else "all")
    test = domain(request.target, "test") if split else None
    cache = request.options.get("image_cache")
    if cache:
        decode = lambda d: cache_images(d, cache_dir=None if cache == "memory" else cache,  # noqa: E731
                                        num_workers=int(request.options.get("image_cache_workers", 0)))  # fmt: skip
        src, tgt, test = decode(src), decode(tgt), decode(test) if test is not None else None
    eval_view = lambda d: d.with_view("eval") if isinstance(d, CachedImages) else d.with_transform(eval_tf)  # noqa: E731
    return make_task(
        request.benchmark,
        request.source,
        src,
        request.target,
        tgt,
        src.classes,
        (3, 224, 224),
        target_test_data=eval_view(test) if test is not None else None,
        target_eval_data=eval_view(tgt),
        source_eval_data=eval_view(src),
        description=BENCHMARKS[request.benchmark].description,
        **request.split_options(),
    )
