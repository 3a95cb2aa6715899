"""End-to-end ``fit`` from torch Datasets against pytorch-adapt's own pipeline, same method.

pytorch-adapt side, as its README shows for use without a framework: ``SourceDataset`` /
``TargetDataset`` / ``CombinedSourceAndTargetDataset`` in a ``DataLoader``, ``batch_to_device``
and ``adapter.training_step`` per batch. Our side: ``model.fit(source_dataset, target_dataset)``.
Same LeNet, a linear classifier, the same 3-layer discriminator without BatchNorm, SGD
(lr 0.01, momentum 0.9, constant), batch 64 per domain, data loading included in the time.

Datasets are (a) a generic map-style Dataset read item by item (both libraries collate), and
(b) a ``TensorDataset`` (our engine slices its tensors directly; pytorch-adapt still collates).
Target on CPU: ratio (ours / theirs) <= 1.0.

    python benchmarks/bench_vs_pytorch_adapt.py [--steps 150] [--device cpu]
"""

from __future__ import annotations

import argparse
import copy
import itertools
import time
import warnings

import pandas as pd
import torch
from _pytorch_adapt import make_adapter  # benchmarks/ is on sys.path when run as a script
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from adapt import methods
from adapt.models import LeNet

warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

BATCH = 64
NUM_CLASSES = 10


class ItemDataset(Dataset):
    """A plain map-style dataset: one example per ``__getitem__``, like an image folder in memory."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return (self.x[i], self.y[i]) if self.y is not None else self.x[i]


def pytorch_adapt_fit(name: str, backbone: nn.Module, source: Dataset, target: Dataset, steps: int, device) -> float:
    from pytorch_adapt.datasets import CombinedSourceAndTargetDataset, SourceDataset, TargetDataset
    from pytorch_adapt.utils.common_functions import batch_to_device

    start = time.perf_counter()
    adapter, _ = make_adapter(name, backbone, 500, NUM_CLASSES, device)
    combined = CombinedSourceAndTargetDataset(SourceDataset(source), TargetDataset(target))
    loader = DataLoader(combined, batch_size=BATCH, shuffle=True, drop_last=True)
    batches = itertools.chain.from_iterable(itertools.repeat(loader))
    for _, data in zip(range(steps), batches):
        adapter.training_step(batch_to_device(data, device))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


# Our configuration matching what pytorch-adapt computes for each method.
OURS = {
    "source_only": {},
    "dann": {"discriminator_hidden": (1024, 1024), "discriminator_batch_norm": False, "schedule_grl": False},
    # pytorch-adapt's Aligner aligns features and logits; its MMDLoss default is linear, one kernel, median bandwidth.
    "dan": {"adapt_logits": True, "estimator": "linear", "multipliers": (1.0,), "bandwidth": "median"},
    "coral": {},
}


def adapt_fit(name: str, backbone: nn.Module, source, target, steps: int, device) -> float:
    start = time.perf_counter()
    model = methods.create(name, backbone, NUM_CLASSES, **OURS[name])
    model.fit(
        source,
        target,
        steps=steps,
        batch_size=BATCH,
        device=device,
        verbose=False,
        log_every=steps,
        lr=0.01,
        momentum=0.9,
        weight_decay=0.0,
        lr_schedule="constant",
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--methods", default=",".join(OURS))
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    xs, ys = torch.rand(4096, 1, 28, 28), torch.randint(0, NUM_CLASSES, (4096,))
    xt = torch.rand(4096, 1, 28, 28) * 0.8 + 0.1
    base = LeNet()
    rows = []
    for name in args.methods.split(","):
        for kind, source, target in [
            ("item Dataset", ItemDataset(xs, ys), ItemDataset(xt)),
            ("TensorDataset", TensorDataset(xs, ys), TensorDataset(xt, torch.zeros_like(ys))),
        ]:
            ours, theirs = [], []
            for _ in range(args.repeats):
                theirs.append(pytorch_adapt_fit(name, copy.deepcopy(base), source, target, args.steps, device))
                ours.append(adapt_fit(name, copy.deepcopy(base), source, target, args.steps, device))
            o, t = sorted(ours)[len(ours) // 2], sorted(theirs)[len(theirs) // 2]
            rows.append({"method": name, "data": kind, "adapt s": o, "pytorch-adapt s": t, "ratio": o / t})
            print(f"{name:12s} {kind:14s} adapt {o:6.2f} s  pytorch-adapt {t:6.2f} s  ratio {o / t:.3f}", flush=True)
    table = pd.DataFrame(rows)
    print(f"\n{args.steps} steps, LeNet 28x28, batch {BATCH}+{BATCH}, {device}, median of {args.repeats}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"worst ratio {table['ratio'].max():.3f} (target <= 1.0 on CPU)")


if __name__ == "__main__":
    main()
