"""Image benchmarks read from folders or image-list files: Office-31, Office-Home, VisDA-2017,
DomainNet and DomainNet-126, plus any two ImageFolder-style directories."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp")
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


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open an image as RGB; a missing or corrupt file raises an error naming it."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"image file not found: {path}") from exc
    except Exception as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from exc


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
    samples = [
        (str(path), index[c])
        for c in found
        for path in sorted((root / c).rglob("*"))
        if path.suffix.lower() in IMAGE_EXTENSIONS
    ]
    if not samples:
        raise ValueError(f"{root} holds no images ({', '.join(IMAGE_EXTENSIONS)}) in class folders")
    return samples, classes


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


OFFICE31_CLASSES = [
    "back_pack", "bike", "bike_helmet", "bookcase", "bottle", "calculator", "desk_chair", "desk_lamp",
    "desktop_computer", "file_cabinet", "headphones", "keyboard", "laptop_computer", "letter_tray",
    "mobile_phone", "monitor", "mouse", "mug", "paper_notebook", "pen", "phone", "printer", "projector",
    "punchers", "ring_binder", "ruler", "scissors", "speaker", "stapler", "tape_dispenser", "trash_can",
]  # fmt: skip
VISDA_CLASSES = [
    "aeroplane", "bicycle", "bus", "car", "horse", "knife", "motorcycle", "person", "plant", "skateboard",
    "train", "truck",
]  # fmt: skip

#: name -> (domains, folder under root, layout text, download key(s))
IMAGE_BENCHMARKS: dict[str, dict[str, Any]] = {
    "office31": {
        "domains": ["amazon", "dslr", "webcam"],
        "num_classes": 31,
        "layout": "<root>/office31/{amazon,dslr,webcam}/images/<class>/<image>.jpg  (31 class folders each)",
        "download": "office31",
    },
    "officehome": {
        "domains": ["Art", "Clipart", "Product", "Real_World"],
        "num_classes": 65,
        "layout": "<root>/officehome/{Art,Clipart,Product,Real_World}/<class>/<image>.jpg  (65 class folders each)",
        "download": "officehome",
    },
    "visda2017": {
        "domains": ["train", "validation"],
        "num_classes": 12,
        "layout": "<root>/visda2017/{train,validation}/image_list.txt with lines '<class>/<image>.jpg <label>',\n"
        "and the images at <root>/visda2017/{train,validation}/<class>/<image>.jpg",
        "download": None,
    },
    "domainnet": {
        "domains": ["clipart", "infograph", "painting", "quickdraw", "real", "sketch"],
        "num_classes": 345,
        "layout": "<root>/domainnet/<domain>_{train,test}.txt with lines '<domain>/<class>/<image>.jpg <label>',\n"
        "and the images at <root>/domainnet/<domain>/<class>/<image>.jpg",
        "download": None,
    },
    "domainnet126": {
        "domains": ["clipart", "painting", "real", "sketch"],
        "num_classes": 126,
        "layout": "<root>/domainnet/<domain>126_{train,test}.txt with lines '<domain>/<class>/<image>.jpg <label>',\n"
        "and the images at <root>/domainnet/<domain>/<class>/<image>.jpg",
        "download": "domainnet126",
    },
}


def _classes_from_samples(samples: list[tuple[str, int]], num_classes: int) -> list[str]:
    names: dict[int, str] = {}
    for path, label in samples:
        names.setdefault(label, Path(path).parent.name)
    return [names.get(i, str(i)) for i in range(num_classes)]


def load_image_domain(
    benchmark: str, domain: str, root: str | os.PathLike[str], split: str = "all"
) -> tuple[list[tuple[str, int]], list[str]]:
    """Samples and class names of one domain of an image benchmark.

    ``split`` is 'all', or 'train'/'test' for DomainNet(-126), whose lists define them.
    """
    spec = IMAGE_BENCHMARKS[benchmark]
    if domain not in spec["domains"]:
        raise ValueError(f"unknown {benchmark} domain {domain!r}; choose one of {', '.join(spec['domains'])}")
    root = Path(root)
    if benchmark == "office31":
        return scan_folder(root / "office31" / domain / "images", OFFICE31_CLASSES)
    if benchmark == "officehome":
        return scan_folder(root / "officehome" / domain)
    if benchmark == "visda2017":
        base = root / "visda2017" / domain
        samples = read_image_list(base / "image_list.txt", base)
        return samples, VISDA_CLASSES
    base = root / "domainnet"
    suffix = "126" if benchmark == "domainnet126" else ""
    splits = ["train", "test"] if split == "all" else [split]
    samples = [s for part in splits for s in read_image_list(base / f"{domain}{suffix}_{part}.txt", base)]
    return samples, _classes_from_samples(samples, spec["num_classes"])
