"""Per-step framework overhead: each method's ``fit`` against a minimal hand-written loop.

Same LeNet backbone (28x28 grayscale), batch 64 source + 64 target, SGD with momentum, same
loss math (the pure functions of ``adapt.losses``), on the CPU. Target: ratio <= 1.05.

    python benchmarks/bench_overhead.py [--steps 150] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import time

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from adapt import losses, methods
from adapt.models import DomainDiscriminator, LeNet
from adapt.train.schedules import grl_coefficient

BATCH = 64
NUM_CLASSES = 10


def hand_written_loop(name: str, backbone: nn.Module, xs, ys, xt, steps: int) -> float:
    """The same method written out by hand, as a user without a library would."""
    classifier = nn.Linear(500, NUM_CLASSES)
    extra: nn.Module | None = None
    if name == "dann":
        extra = DomainDiscriminator(500, (1024, 1024))
    elif name == "cdan":
        extra = DomainDiscriminator(1024, (1024, 1024))
        rf, rg = torch.randn(500, 1024), torch.randn(NUM_CLASSES, 1024)
    params = list(backbone.parameters()) + list(classifier.parameters()) + (list(extra.parameters()) if extra else [])
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4)
    gen = torch.Generator().manual_seed(0)
    n_s, n_t = len(xs), len(xt)
    backbone.train(), classifier.train()
    if extra is not None:
        extra.train()
    start = time.perf_counter()
    perm_s, perm_t, pos = torch.randperm(n_s, generator=gen), torch.randperm(n_t, generator=gen), 0
    for step in range(steps):
        p = step / steps
        for g in opt.param_groups:
            g["lr"] = 0.01 * (1 + 10 * p) ** -0.75
        if pos + BATCH > min(n_s, n_t):
            perm_s, perm_t, pos = torch.randperm(n_s, generator=gen), torch.randperm(n_t, generator=gen), 0
        bx, by, bt = xs[perm_s[pos : pos + BATCH]], ys[perm_s[pos : pos + BATCH]], xt[perm_t[pos : pos + BATCH]]
        pos += BATCH
        if name == "source_only":
            loss = F.cross_entropy(classifier(backbone(bx)), by)
        else:
            f = backbone(torch.cat([bx, bt]))
            logits = classifier(f)
            fs, ft, ls, lt = f[:BATCH], f[BATCH:], logits[:BATCH], logits[BATCH:]
            loss = F.cross_entropy(ls, by)
            if name == "dann":
                d = extra(losses.gradient_reversal(f, grl_coefficient(p)))
                loss = loss + losses.domain_adversarial_loss(d[:BATCH], d[BATCH:])
            elif name == "cdan":
                g = torch.softmax(logits.detach(), 1)
                d = extra(losses.gradient_reversal(losses.randomized_multilinear_map(f, g, rf, rg), grl_coefficient(p)))
                loss = loss + losses.domain_adversarial_loss(d[:BATCH], d[BATCH:])
            elif name == "dan":
                loss = loss + losses.mmd(fs, ft)
            elif name == "coral":
                loss = loss + losses.coral_loss(fs, ft)
            elif name == "mcc":
                loss = loss + losses.mcc_loss(lt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - start) / steps


def library_loop(name: str, backbone: nn.Module, xs, ys, xt, steps: int) -> float:
    model = methods.create(name, backbone, NUM_CLASSES)
    history = model.fit((xs, ys), xt, steps=steps, batch_size=BATCH, device="cpu", verbose=False, log_every=50)
    return history["seconds"].iloc[-1] / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", default=",".join(methods.available()))
    args = parser.parse_args()
    torch.manual_seed(0)
    xs, ys = torch.randn(2048, 1, 28, 28), torch.randint(0, NUM_CLASSES, (2048,))
    xt = torch.randn(2048, 1, 28, 28) + 0.5
    base = LeNet()
    rows = []
    for name in args.methods.split(","):
        ours, hand = [], []
        for _ in range(args.repeats):  # interleaved, so drift in machine load hits both
            hand.append(hand_written_loop(name, copy.deepcopy(base), xs, ys, xt, args.steps))
            ours.append(library_loop(name, copy.deepcopy(base), xs, ys, xt, args.steps))
        o, h = sorted(ours)[len(ours) // 2], sorted(hand)[len(hand) // 2]
        rows.append({"method": name, "adapt ms/step": 1000 * o, "hand-written ms/step": 1000 * h, "ratio": o / h})
        print(f"{name:12s} adapt {1000 * o:7.2f} ms  hand {1000 * h:7.2f} ms  ratio {o / h:.3f}", flush=True)
    table = pd.DataFrame(rows)
    print(f"\nLeNet 28x28, batch {BATCH}+{BATCH}, CPU, {torch.get_num_threads()} threads, median of {args.repeats}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"worst ratio {table['ratio'].max():.3f} (target <= 1.05)")


if __name__ == "__main__":
    main()
