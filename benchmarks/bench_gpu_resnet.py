"""Throughput on an accelerator: images per second per method, ResNet at 224x224, batch 32 + 32.

Ours with bf16 autocast and channels_last against (a) our SourceOnly in the same settings and (b)
pytorch-adapt's own pipeline in fp32 (its adapters have no AMP), same backbone and batch. Random
images in memory, so the input pipeline is not the bottleneck. Meant for a GPU; it also runs on the
CPU with small settings to check the script itself:

Then one synthetic Office-31-sized DANN run as ``fit`` runs it: 4,110 decoded 256x256 images in a
:class:`~adapt.data.cache.CachedImages` (random crops, flips and normalization on the device), 31
classes, batch 32 + 32; ``--run-steps`` of them are timed and the 20k-step time is extrapolated.

    python benchmarks/bench_gpu_resnet.py                                  # GPU: resnet50, 224 px
    python benchmarks/bench_gpu_resnet.py --device cpu --arch resnet18 --size 64 --steps 2 --warmup 1 \
        --run-images 64 --run-steps 2                                      # checks the script on a CPU
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
import torch
from _pytorch_adapt import SUPPORTED, make_adapter  # benchmarks/ is on sys.path when run as a script
from torch import nn

from adapt import methods
from adapt.data.cache import CachedImages
from adapt.models import ResNetFeatures

warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
NUM_CLASSES = 31
METHODS = ("source_only", "dann", "dan", "coral", "cdan", "mcc")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def ours(
    name: str, arch: str, xs, ys, xt, steps: int, warmup: int, device, amp: str | None, channels_last: bool
) -> float:
    model = methods.create(name, ResNetFeatures(arch), NUM_CLASSES, bottleneck_dim=256)
    options = dict(batch_size=len(xs), device=device, verbose=False, amp=amp, channels_last=channels_last,
                   lr=0.01, log_every=10**9)  # fmt: skip
    model.fit((xs, ys), xt, steps=warmup, **options)  # warms up kernels, cudnn autotuning, the allocator
    history = model.fit((xs, ys), xt, steps=steps, **options)
    # the training loop alone (the engine syncs before logging the last step), as for pytorch-adapt below
    return 2 * len(xs) * steps / history["seconds"].iloc[-1]


def pytorch_adapt(name: str, arch: str, xs, ys, xt, steps: int, warmup: int, device) -> float | None:
    if name not in SUPPORTED:
        return None
    backbone = ResNetFeatures(arch)
    generator = nn.Sequential(backbone, nn.Linear(backbone.out_features, 256))
    adapter, _ = make_adapter(name, generator, 256, NUM_CLASSES, device)
    domains = {"src_domain": torch.zeros(len(xs), device=device), "target_domain": torch.ones(len(xt), device=device)}
    batch = {"src_imgs": xs, "src_labels": ys, "target_imgs": xt, **domains}
    for _ in range(warmup):
        adapter.training_step(batch)
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        adapter.training_step(batch)
    _sync(device)
    return 2 * len(xs) * steps / (time.perf_counter() - start)


def office_sized_run(arch: str, size: int, images: int, steps: int, batch: int, device, amp, channels_last) -> dict:
    """Seconds per step of DANN on cached synthetic images, as a 20k-step Office-31 run takes them."""
    crop = size * 224 // 256 if size < 256 else 224
    pixels = torch.randint(0, 256, (images, 3, size, size), dtype=torch.uint8)
    labels = np.arange(images) % NUM_CLASSES
    source = CachedImages(pixels, labels, [str(c) for c in range(NUM_CLASSES)], crop=crop)
    target = source.subset(np.random.default_rng(0).permutation(images)).unlabeled()
    model = methods.create("dann", ResNetFeatures(arch), NUM_CLASSES, bottleneck_dim=256)
    options = dict(batch_size=batch, device=device, verbose=False, amp=amp, channels_last=channels_last, lr=0.01,
                   log_every=10**9)  # fmt: skip
    model.fit(source, target, steps=2, **options)  # warm-up
    seconds = model.fit(source, target, steps=steps, **options)["seconds"].iloc[-1]
    return {
        "timed steps": steps,
        "s/step": seconds / steps,
        "20k steps (min, extrapolated)": seconds / steps * 20000 / 60,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32, help="per domain")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--run-images", type=int, default=4110, help="Office-31 has 4,110 images")
    parser.add_argument("--run-steps", type=int, default=200, help="timed steps of the Office-31-sized run")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    shape = (args.batch, 3, args.size, args.size)
    xs, xt = torch.randn(shape, device=device), torch.randn(shape, device=device)
    ys = torch.randint(0, NUM_CLASSES, (args.batch,), device=device)
    amp = "bf16" if device.type == "cuda" else None
    rows = []
    for name in args.methods.split(","):
        fast = ours(name, args.arch, xs, ys, xt, args.steps, args.warmup, device, amp, device.type == "cuda")
        fp32 = ours(name, args.arch, xs, ys, xt, args.steps, args.warmup, device, None, False)
        theirs = pytorch_adapt(name, args.arch, xs, ys, xt, args.steps, args.warmup, device)
        rows.append({"method": name, f"adapt {amp or 'fp32'} img/s": fast, "adapt fp32 img/s": fp32,
                     "pytorch-adapt fp32 img/s": theirs})  # fmt: skip
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows).set_index("method")
    fast_col = table.columns[0]
    table["vs our SourceOnly"] = (
        table[fast_col] / table.loc["source_only", fast_col] if "source_only" in table.index else float("nan")
    )
    table["vs pytorch-adapt fp32"] = table[fast_col] / table["pytorch-adapt fp32 img/s"]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"\n{args.arch} {args.size}px, batch {args.batch}+{args.batch}, {name}, {args.steps} timed steps")
    print(table.to_string(float_format=lambda v: f"{v:.2f}"))
    fast = device.type == "cuda"
    run = office_sized_run(args.arch, 256 if args.size >= 224 else args.size * 256 // 224, args.run_images,
                           args.run_steps, args.batch, device, amp, fast)  # fmt: skip
    print(
        f"\nOffice-31-sized DANN run ({args.run_images} cached images, batch {args.batch}+{args.batch}, "
        f"{amp or 'fp32'}{', channels_last' if fast else ''}): " + ", ".join(f"{k} {v:.3g}" for k, v in run.items())
    )


if __name__ == "__main__":
    main()
