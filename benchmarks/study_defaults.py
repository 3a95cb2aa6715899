"""Choosing defaults on the TUNING half only: weights across feature widths, and SGD against Adam.

Issue 31, items 1 and 3. Every run trains a ``ConvNet`` (``out_features`` = the width) with
``fit(steps=..., batch_size=64, seed=...)`` on one of the tuning shifts of
``bench_vs_pytorch_adapt.SHIFTS`` (the confirmation shifts only with ``--half confirmation``: they
report, they do not choose). Two blocks:

* ``width``: SourceOnly, CORAL as in the paper (trade-off 1, and 50 as the quick suite set it by
  hand), scale-free CORAL at trade-offs 0.1, 0.3, 1 and 3, and DAN, at widths 16, 64 and 512, under the
  library's SGD defaults;
* ``optimizer``: each method at width 64 under ``fit``'s SGD defaults and under Adam (lr 1e-3,
  constant, no weight decay: pytorch-adapt's setting in the accuracy benchmark);
* ``label-shift`` (``--block label-shift --steps 3000``): DANN with and without its class importance
  weights (``importance_weighting``, 0.5.0), width 64, SGD defaults; 3000 steps, since the warm-start
  reversal leaves DANN near SourceOnly at 500.

``--half confirmation`` runs the optimizer block on the confirmation shifts instead, to report whether
the choice holds there (it chooses nothing: the table says so).

Prints each variant's gain over SourceOnly (same shift, seed, width and optimizer), its 95%
t-interval over the shift x seed pairs and its negative-transfer rate (pairs more than 2 points
below SourceOnly). Finished runs are appended to ``--out`` and skipped on rerun.

    python benchmarks/study_defaults.py [--steps 500] [--seeds 2] [--jobs 2] [--half tuning|confirmation]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from bench_vs_pytorch_adapt import BATCH, NUM_CLASSES, SHIFTS, _interval, run_missing  # benchmarks/ is on sys.path

from adapt import methods
from adapt.models import ConvNet

ADAM = {"optimizer": "adam", "lr": 1e-3, "lr_schedule": "constant", "weight_decay": 0.0}

#: variant -> (method, method options)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "source_only": ("source_only", {}),
    "coral paper x1": ("coral", {}),
    "coral paper x50": ("coral", {"trade_off": 50.0}),
    "coral scale-free x0.1": ("coral", {"normalization": "scale_free", "trade_off": 0.1}),
    "coral scale-free x0.3": ("coral", {"normalization": "scale_free", "trade_off": 0.3}),
    "coral scale-free x1": ("coral", {"normalization": "scale_free", "trade_off": 1.0}),
    "coral scale-free x3": ("coral", {"normalization": "scale_free", "trade_off": 3.0}),
    "dan": ("dan", {}),
    "dann": ("dann", {}),
    "dann unweighted": ("dann", {"importance_weighting": False}),
    "dann importance-weighted": ("dann", {"importance_weighting": True}),
    "cdan": ("cdan", {}),
    "mcc": ("mcc", {}),
}
WIDTH_BLOCK = ["source_only", "coral paper x1", "coral paper x50", "coral scale-free x0.1", "coral scale-free x0.3",
               "coral scale-free x1", "coral scale-free x3", "dan"]  # fmt: skip
OPTIMIZER_BLOCK = ["source_only", "coral paper x1", "coral scale-free x1", "dan", "dann", "cdan", "mcc"]
LABEL_SHIFT_BLOCK = ["source_only", "dann unweighted", "dann importance-weighted"]
KEY = ["shift", "variant", "width", "optimizer", "steps", "seed"]


def planned(steps: int, seeds: int, half: str = "tuning", block: str = "width+optimizer") -> list[dict]:
    shifts = [name for name, (h, _) in SHIFTS.items() if h == half]
    cells = [(shift, seed) for shift in shifts for seed in range(seeds)]
    if block == "label-shift":
        keys = [{"variant": v, "width": 64, "optimizer": "sgd"} for v in LABEL_SHIFT_BLOCK]
        return [{"shift": s, **k, "steps": steps, "seed": seed} for s, seed in cells for k in keys]
    keys = [{"variant": v, "width": 64, "optimizer": o} for o in ("sgd", "adam") for v in OPTIMIZER_BLOCK]
    if half == "tuning":
        keys = [k for k in keys if not (k["optimizer"] == "sgd" and k["variant"] in WIDTH_BLOCK)]
        keys += [{"variant": v, "width": w, "optimizer": "sgd"} for w in (16, 64, 512) for v in WIDTH_BLOCK]
    return [{"shift": s, **k, "steps": steps, "seed": seed} for s, seed in cells for k in keys]


def one_run(key: dict) -> dict:
    torch.set_num_threads(1)
    xs, ys, xt, yt = SHIFTS[key["shift"]][1](key["seed"])
    method, options = VARIANTS[key["variant"]]
    torch.manual_seed(key["seed"])
    backbone = ConvNet(xs.shape[1], out_features=key["width"])
    model = methods.create(method, backbone=backbone, num_classes=NUM_CLASSES, **options)
    train = ADAM if key["optimizer"] == "adam" else {}
    start = time.perf_counter()
    model.fit((xs, ys), xt, steps=key["steps"], batch_size=BATCH, seed=key["seed"], verbose=False, **train)
    return {**key, "accuracy": 100 * model.score(xt, yt), "seconds": time.perf_counter() - start}


def summary(runs: pd.DataFrame) -> pd.DataFrame:
    cell = ["shift", "width", "optimizer", "steps", "seed"]
    base = runs[runs["variant"] == "source_only"].set_index(cell)["accuracy"]
    rows = []
    for (variant, width, optimizer, steps), g in runs[runs["variant"] != "source_only"].groupby(
        ["variant", "width", "optimizer", "steps"]
    ):
        gain = (g.set_index(cell)["accuracy"] - base).dropna()
        rows.append({"variant": variant, "width": width, "optimizer": optimizer, "steps": steps,
                     "accuracy": g["accuracy"].mean(), "gain over SourceOnly": _interval(gain),
                     "negative transfer": f"{(gain < -2).mean():.0%}", "pairs": len(gain)})  # fmt: skip
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("study_defaults.csv"))
    parser.add_argument("--half", choices=("tuning", "confirmation"), default="tuning")
    parser.add_argument("--block", choices=("width+optimizer", "label-shift"), default="width+optimizer")
    args = parser.parse_args()
    run_missing(planned(args.steps, args.seeds, args.half, args.block), KEY, one_run, args.out, args.jobs,
                lambda r: f"{r['shift']} {r['variant']} w{r['width']} {r['optimizer']}")  # fmt: skip
    runs = pd.read_csv(args.out)
    half = runs["shift"].map(lambda name: SHIFTS[name][0])
    others = [v for v in VARIANTS if v not in LABEL_SHIFT_BLOCK[1:]]
    variants = LABEL_SHIFT_BLOCK if args.block == "label-shift" else others
    runs = runs[(runs["steps"] == args.steps) & (half == args.half) & runs["variant"].isin(variants)]
    role = "TUNING half: chooses the defaults" if args.half == "tuning" else "CONFIRMATION half: chooses nothing"
    print(f"\n{role}; {args.steps} steps, ConvNet, batch {BATCH}+{BATCH}; gain over SourceOnly at the same "
          "width and optimizer, ± 95% t-interval over shift x seed pairs")  # fmt: skip
    print(summary(runs).sort_values(["optimizer", "variant", "width"]).to_string(index=False, float_format="%.1f"))


if __name__ == "__main__":
    main()
