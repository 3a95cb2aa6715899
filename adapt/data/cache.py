"""Decode images once, keep them as uint8, augment whole batches on the device.

An Office-31 run spends most of its time decoding JPEGs and augmenting them one by one on the CPU.
:func:`cache_images` decodes each image of an :class:`~adapt.data.images.ImageList` once, resizes it
to ``size x size`` (both sides, as TLlib's ``ResizeImage(256)``) and keeps the uint8 pixels: in memory,
or in a ``.npy`` file under ``cache_dir`` that is memory-mapped (datasets larger than memory) and that
later runs of a sweep reuse. The file is keyed by the file list (paths, sizes, modification times) and
the size, so a changed dataset or size builds a new one.

The training view (:class:`DeviceAugment`) is a random resized crop (scale 0.08-1, aspect ratio 3/4-4/3,
drawn as ``torchvision.transforms.RandomResizedCrop`` draws them, a different crop per image), a random
horizontal flip and the ImageNet normalization, done on whatever device the batch is on, on uint8
tensors (``torchvision.transforms.v2.functional``) rather than PIL images. The evaluation view is a
center crop and the normalization. Both equal the per-image path :func:`reference_transform` (PIL)
up to the interpolation of the crop (tensor vs PIL bilinear; the evaluation view has no
interpolation and is identical up to float rounding).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T
from torchvision.transforms.v2 import functional as TF

from .decode import load_image

View = Literal["train", "eval"]
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
_IN_MEMORY: dict[str, torch.Tensor] = {}  # one process's decoded images by key (a sweep reuses them)


def reference_transform(view: View, size: int = 256, crop: int = 224) -> Callable[[Any], torch.Tensor]:
    """The per-image (PIL) transform that a cached dataset's ``view`` stands for."""
    normalize = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    if view == "train":
        return T.Compose([T.Resize((size, size)), T.RandomResizedCrop(crop), T.RandomHorizontalFlip(), T.ToTensor(),
                          normalize])  # fmt: skip
    return T.Compose([T.Resize((size, size)), T.CenterCrop(crop), T.ToTensor(), normalize])


def crop_boxes(
    n: int, height: int, width: int, generator: torch.Generator | None = None,
    scale: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3), attempts: int = 10,
) -> torch.Tensor:  # fmt: skip
    """``n`` random resized crop boxes ``(top, left, height, width)``, each drawn as
    ``RandomResizedCrop.get_params`` draws one: up to ``attempts`` (area, log-ratio) draws, the first
    that fits, else the center crop of the largest box within the ratio range."""
    area = height * width
    target_area = area * torch.empty(n, attempts).uniform_(scale[0], scale[1], generator=generator)
    log_ratio = torch.empty(n, attempts).uniform_(np.log(ratio[0]), np.log(ratio[1]), generator=generator)
    aspect = log_ratio.exp()
    w = (target_area * aspect).sqrt().round().long()
    h = (target_area / aspect).sqrt().round().long()
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.float().argmax(1)
    w, h = w.gather(1, first[:, None])[:, 0], h.gather(1, first[:, None])[:, 0]
    ok = fits.any(1)
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fallback_w, fallback_h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        fallback_w, fallback_h = round(height * ratio[1]), height
    else:
        fallback_w, fallback_h = width, height
    w, h = torch.where(ok, w, fallback_w), torch.where(ok, h, fallback_h)
    u = torch.rand(n, 2, generator=generator)
    top = torch.where(ok, (u[:, 0] * (height - h + 1)).long(), (height - h) // 2)
    left = torch.where(ok, (u[:, 1] * (width - w + 1)).long(), (width - w) // 2)
    return torch.stack([top, left, h, w], 1)


class DeviceAugment:
    """Batched views of uint8 images ``(N, 3, S, S)`` on their own device (see the module docstring)."""

    def __init__(self, crop: int = 224) -> None:
        self.crop = crop
        self._constants: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}  # per device, made once

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        if x.device not in self._constants:
            std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
            mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
            self._constants[x.device] = (1 / (255 * std), mean / std)
        scale, shift = self._constants[x.device]
        return x.float().mul_(scale).sub_(shift)  # (x / 255 - mean) / std in two passes

    @staticmethod
    def draw(n: int, height: int, width: int, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Crop boxes and flips for ``n`` images, drawn from ``generator`` as :meth:`train_view` draws them."""
        return crop_boxes(n, height, width, generator), torch.rand(n, generator=generator) < 0.5

    def eval_view(self, images: torch.Tensor) -> torch.Tensor:
        return self._normalize(TF.center_crop(images, [self.crop, self.crop]))

    def train_view(
        self, images: torch.Tensor, generator: torch.Generator | None = None, boxes: torch.Tensor | None = None,
        flips: torch.Tensor | None = None,
    ) -> torch.Tensor:  # fmt: skip
        """Random resized crops (``boxes``: given, or drawn from ``generator`` on the CPU) and flips.

        Each crop is torchvision's ``resized_crop`` on the uint8 tensor (bilinear, antialiased: the
        vectorized uint8 kernel on the CPU), so a view equals ``transforms.v2`` applied to that image
        with the same crop; only the normalization runs on the whole batch."""
        n, _, height, width = images.shape
        boxes = crop_boxes(n, height, width, generator) if boxes is None else boxes
        flips = torch.rand(n, generator=generator) < 0.5 if flips is None else flips
        out = images.new_empty((n, images.shape[1], self.crop, self.crop))
        for k, ((top, left, h, w), flip) in enumerate(zip(boxes.tolist(), flips.tolist())):
            view = TF.resized_crop(images[k], top, left, h, w, [self.crop, self.crop], antialias=True)
            out[k] = view.flip(-1) if flip else view
        return self._normalize(out)


class CachedImages(Dataset):
    """Decoded uint8 images (shared storage), some of their rows, their labels and a view.

    Items are ``(x, label)`` (or ``x`` when unlabeled) as a per-image dataset gives them, so any code
    can use it; ``fit`` and ``predict`` recognize it and draw whole batches on the device instead.
    """

    def __init__(
        self, images: torch.Tensor, labels: np.ndarray | None, classes: list[str], view: View = "train",
        crop: int = 224, rows: np.ndarray | None = None,
    ) -> None:  # fmt: skip
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"cached images must be uint8 (N, 3, S, S), got {images.dtype} {tuple(images.shape)}")
        if view not in ("train", "eval"):
            raise ValueError(f"view must be 'train' or 'eval', got {view!r}")
        self.images, self.classes, self.view, self.crop = images, classes, view, crop
        self.rows = np.arange(len(images)) if rows is None else np.asarray(rows, dtype=np.int64)
        self.targets = None if labels is None else np.asarray(labels)[self.rows]
        self._labels = labels
        self.augment = DeviceAugment(crop)

    def __len__(self) -> int:
        return len(self.rows)

    def _derive(self, **changes: Any) -> CachedImages:
        options = {"view": self.view, "crop": self.crop, "rows": self.rows, "labels": self._labels, **changes}
        return CachedImages(self.images, options.pop("labels"), self.classes, **options)

    def with_view(self, view: View) -> CachedImages:
        """The same rows seen through the training (augmented) or the evaluation view."""
        return self._derive(view=view)

    def to(self, device: torch.device | str) -> CachedImages:
        """The same dataset with its uint8 storage on ``device`` (one copy, for a whole run)."""
        moved = self._derive()
        moved.images = self.images.to(device)
        return moved

    def subset(self, indices: np.ndarray) -> CachedImages:
        return self._derive(rows=self.rows[np.asarray(indices, dtype=np.int64)])

    def unlabeled(self) -> CachedImages:
        return self._derive(labels=None)

    def pixels(self, positions: torch.Tensor) -> torch.Tensor:
        """uint8 images of the dataset positions ``positions`` (rows of the shared storage)."""
        rows = torch.from_numpy(self.rows)[positions.cpu()]
        return self.images.index_select(0, rows.to(self.images.device))

    def eval_view(self, images: torch.Tensor) -> torch.Tensor:
        return self.augment.eval_view(images)

    def apply_view(
        self, images: torch.Tensor, generator: torch.Generator | None = None, shard: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """The view of a batch. ``shard=(rank, world)``: ``images`` are rank's share (every world-th row)
        of a global batch; crops and flips are drawn for the global batch and shared out the same way,
        as a one-process run draws them."""
        if self.view == "eval":
            return self.augment.eval_view(images)
        if shard is None:
            return self.augment.train_view(images, generator)
        rank, world = shard
        n, _, height, width = images.shape
        boxes, flips = self.augment.draw(n * world, height, width, generator)
        return self.augment.train_view(images, boxes=boxes[rank::world], flips=flips[rank::world])

    def __getitem__(self, index: int) -> Any:
        x = self.apply_view(self.pixels(torch.tensor([index])))[0]
        return x if self.targets is None else (x, int(self.targets[index]))


def _fingerprint(samples: list[tuple[str, int]], size: int) -> str:
    digest = hashlib.sha256(f"adapt-image-cache-v1 size={size}\n".encode())
    for path, label in samples:
        try:
            stat = os.stat(path)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"image file not found: {path}") from exc
        digest.update(f"{path}\t{label}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


class _Decoded(Dataset):
    def __init__(self, samples: list[tuple[str, int]], size: int) -> None:
        self.samples, self.resize = samples, T.Resize((size, size))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> torch.Tensor:

        pixels = np.asarray(self.resize(load_image(self.samples[index][0])), dtype=np.uint8)
        return torch.from_numpy(pixels.transpose(2, 0, 1).copy())


def _decode_into(out: np.ndarray | torch.Tensor, samples: list[tuple[str, int]], size: int, num_workers: int,
                 progress: bool) -> None:  # fmt: skip
    from tqdm.auto import tqdm

    loader = DataLoader(_Decoded(samples, size), batch_size=64, num_workers=num_workers)
    start = 0
    for batch in tqdm(loader, desc=f"decoding {len(samples)} images", disable=not progress, leave=False):
        out[start : start + len(batch)] = batch.numpy() if isinstance(out, np.ndarray) else batch
        start += len(batch)


def cache_images(
    dataset: Any, size: int = 256, crop: int = 224, cache_dir: str | os.PathLike[str] | None = None,
    num_workers: int = 0, progress: bool = True,
) -> CachedImages:  # fmt: skip
    """Decode an :class:`~adapt.data.images.ImageList` once into a :class:`CachedImages` (training view).

    ``cache_dir``: keep the pixels in ``<cache_dir>/images-<key>.npy`` (memory-mapped, reused by every
    later call with the same files and size; written under a temporary name, then renamed, so a crash
    or a parallel worker never leaves half a file). None: in this process's memory (reused by later
    calls in the same process). ``num_workers``: decoding processes.
    """
    samples, classes = getattr(dataset, "samples", None), getattr(dataset, "classes", None)
    if samples is None or classes is None:
        raise TypeError(f"cache_images needs an ImageList (with .samples and .classes), got {type(dataset).__name__}")
    if crop > size:
        raise ValueError(f"crop ({crop}) must not exceed the cached size ({size})")
    key = _fingerprint(samples, size)
    labels = np.asarray([label for _, label in samples], dtype=np.int64)
    shape = (len(samples), 3, size, size)
    if cache_dir is None:
        if key not in _IN_MEMORY:
            images = torch.empty(shape, dtype=torch.uint8)
            _decode_into(images, samples, size, num_workers, progress)
            _IN_MEMORY[key] = images
        return CachedImages(_IN_MEMORY[key], labels, list(classes), "train", crop)
    path = Path(cache_dir).expanduser() / f"images-{key}.npy"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.npy")
        out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=shape)
        _decode_into(out, samples, size, num_workers, progress)
        out.flush()
        del out
        os.replace(partial, path)
    array = np.load(path, mmap_mode="c")  # copy-on-write: writable for torch, the file is never changed
    if array.shape != shape or array.dtype != np.uint8:
        raise ValueError(f"{path} holds {array.dtype} {array.shape}, expected uint8 {shape}; delete it to rebuild")
    return CachedImages(torch.from_numpy(array), labels, list(classes), "train", crop)
