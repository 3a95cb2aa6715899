"""Input pipeline: decoded uint8 cache + batched augmentation against ImageFolder + DataLoader.

Both produce the same training view at 224 px (resize to 256x256, random resized crop 224, random
flip, ImageNet normalization) for JPEGs written here (Office-31-like: a few hundred photos of about
300x300 px in class folders). The baseline is ``torchvision.datasets.ImageFolder`` with the per-image
PIL transform in a ``DataLoader`` with worker processes; ours decodes once (timed apart: a 20k-step run
reads every image about 300 times) and then draws batches as ``fit`` does, augmenting a whole batch at
a time on the device. Images per second after one warm-up batch, measured in this process:

    python benchmarks/bench_image_pipeline.py                       # CPU, 400 images, 30 batches of 32
    python benchmarks/bench_image_pipeline.py --device cuda --batches 200
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder

from adapt.data.cache import cache_images, reference_transform
from adapt.data.images import ImageList, scan_folder
from adapt.train.data import CachedBatches, as_domain


def write_jpegs(root: Path, n: int, classes: int = 10, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for i in range(n):
        folder = root / f"class_{i % classes:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        # smooth photo-like content (random noise would make JPEG decoding unrealistically slow)
        small = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
        size = (300 + int(rng.integers(-20, 21)), 300)
        Image.fromarray(small).resize(size, Image.BICUBIC).save(folder / f"{i:05d}.jpg", quality=90)


def time_batches(batches, n: int, device: torch.device) -> float:
    """Images per second over ``n`` batches after one warm-up batch."""
    iterator = iter(batches)
    next(iterator)
    start, images = time.perf_counter(), 0
    for _ in range(n):
        x = next(iterator)[0].to(device)
        images += len(x)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return images / (time.perf_counter() - start)


def endless(loader: DataLoader):
    while True:
        yield from loader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="DataLoader worker processes")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        write_jpegs(root, args.images)
        folder = ImageFolder(str(root), transform=reference_transform("train"))
        loader = DataLoader(folder, batch_size=args.batch, shuffle=True, num_workers=args.workers, drop_last=True,
                            pin_memory=device.type == "cuda", persistent_workers=args.workers > 0)  # fmt: skip
        baseline = time_batches(endless(loader), args.batches, device)
        del loader

        start = time.perf_counter()
        cached = cache_images(ImageList(*scan_folder(root)), num_workers=args.workers, progress=False)
        decode_seconds = time.perf_counter() - start
        stream = CachedBatches(as_domain(cached, "source", True, 10), args.batch, torch.Generator().manual_seed(0),
                               device)  # fmt: skip
        ours = time_batches(stream, args.batches, device)
    table = pd.DataFrame(
        {"images/s": [baseline, ours], "one-time decode (s)": [0.0, decode_seconds]},
        index=[f"ImageFolder + DataLoader ({args.workers} workers)", "adapt cached uint8 + batched augmentation"],
    )
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {os.cpu_count()} cores"
    print(f"{args.images} JPEGs of ~300x300 px, batch {args.batch}, {args.batches} timed batches, 224 px, {name}")
    print(table.to_string(float_format=lambda v: f"{v:.1f}"))
    print(f"cached / ImageFolder: {ours / baseline:.1f}x")


if __name__ == "__main__":
    main()
