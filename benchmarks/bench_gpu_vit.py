"""Throughput of a ViT on an accelerator: images per second per method, ViT-B/16 at 224x224, batch 32 + 32.

Every method with bf16 autocast, SDAT (``fit(sam_rho=0.02)``: two forward-backward passes per step) and MIC
(the ``mic`` regularizer: a teacher pass and a masked student pass) included, each against SourceOnly in the
same process and settings (the ratio column). Random weights (throughput does not depend on them) and random
images in memory, so neither a download nor the input pipeline is involved. Meant for a GPU; it also runs on
the CPU with timm's tiny test ViT to check the script itself:

    python benchmarks/bench_gpu_vit.py                                           # GPU: vit_base_patch16_224
    python benchmarks/bench_gpu_vit.py --device cpu --model test_vit --size 32 --batch 4 --steps 1 --warmup 1
"""

from __future__ import annotations

import argparse

import pandas as pd
import torch

from adapt import methods
from adapt.models import TimmFeatures

NUM_CLASSES = 65
#: (label, method, fit options)
VARIANTS = (
    ("source_only", "source_only", {}),
    ("dann", "dann", {}),
    ("cdan+mcc", "cdan+mcc", {}),
    ("cdan+mcc, SDAT", "cdan+mcc", {"sam_rho": 0.02}),
    ("cdan+mcc+mic, SDAT", "cdan+mcc+mic", {"sam_rho": 0.02}),
)


def images_per_second(method: str, model_name: str, size: int, batch: int, steps: int, warmup: int,
                      device: str, amp: str | None, fit_options: dict) -> float:  # fmt: skip
    torch.manual_seed(0)
    xs, xt = torch.randn(batch, 3, size, size, device=device), torch.randn(batch, 3, size, size, device=device)
    ys = torch.arange(batch, device=device) % NUM_CLASSES
    extra = {"img_size": size} if "vit" in model_name else {}
    model = methods.create(method, TimmFeatures(model_name, inputs="model", **extra), NUM_CLASSES, bottleneck_dim=256)
    options = dict(batch_size=batch, device=device, verbose=False, amp=amp, lr=0.002, log_every=10**9, **fit_options)
    model.fit((xs, ys), xt, steps=warmup, **options)  # kernels, autotuning, the allocator
    history = model.fit((xs, ys), xt, steps=steps, **options)
    return 2 * batch * steps / history["seconds"].iloc[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="vit_base_patch16_224")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32, help="per domain")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    amp = "bf16" if args.device.startswith("cuda") else None
    rows = []
    for label, method, options in VARIANTS:
        speed = images_per_second(method, args.model, args.size, args.batch, args.steps, args.warmup, args.device,
                                  amp, options)  # fmt: skip
        rows.append({"method": label, "images/s": speed})
    table = pd.DataFrame(rows)
    table["vs source_only"] = table["images/s"] / table["images/s"].iloc[0]
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"{args.model}, {args.size} px, batch {args.batch} + {args.batch}, amp {amp}, {device}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
