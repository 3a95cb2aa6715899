"""Accuracy study (not a speed benchmark): test-time adaptation on the offline corruption benchmark.

A SourceOnly ConvNet (BatchNorm) is trained on the clean half of the UCI digits; the other half is
streamed once, in a fixed order, under each of the 15 corruptions of ``optdigits-c`` at one severity,
through the unadapted model, BatchNorm adaptation and TENT. Prints online accuracy (each batch scored
before the method adapts on it) per corruption and the mean, as a table; nothing is tuned.

    python benchmarks/study_testtime_corruptions.py [--severity 5] [--seeds 2] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from adapt import SourceOnly
from adapt.bench.backbones import build_backbone
from adapt.data import task
from adapt.data.corruptions import CORRUPTIONS
from adapt.testtime import TENT, BNAdapt, evaluate_stream


def source_model(seed: int) -> SourceOnly:
    clean = task("optdigits-c", "clean", "fog-1", seed=seed)
    torch.manual_seed(seed)
    model = SourceOnly(build_backbone({"kind": "convnet"}, clean.input_shape), clean.num_classes)
    source = clean.source_train[:]
    model.fit(source, source[0], steps=600, batch_size=64, lr=0.01, seed=seed, verbose=False)
    return model


def stream_scores(model: SourceOnly, severity: int, seed: int, batch_size: int) -> list[dict]:
    rows = []
    for name in CORRUPTIONS:
        x, y = task("optdigits-c", "clean", f"{name}-{severity}", seed=seed).target_test[:]
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))  # one fixed stream order
        x, y = torch.as_tensor(x)[order], torch.as_tensor(y)[order]
        unadapted = float((model.predict(x) == y).float().mean())
        row = {"seed": seed, "corruption": name, "source model": unadapted}
        for label, method in (("BN adapt", BNAdapt(model)), ("TENT", TENT(model))):
            row[label] = float(evaluate_stream(method, x, y, batch_size=batch_size)["online_accuracy"])
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--severity", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    start = time.perf_counter()
    rows = [r for seed in range(args.seeds) for r in stream_scores(source_model(seed), args.severity, seed,
                                                                   args.batch_size)]  # fmt: skip
    table = pd.DataFrame(rows).groupby("corruption", sort=False)[["source model", "BN adapt", "TENT"]].mean() * 100
    table.loc["mean"] = table.mean()
    print(f"online accuracy (%), optdigits-c severity {args.severity}, {args.seeds} seeds, batch {args.batch_size}")
    print(table.round(1).to_string())
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
