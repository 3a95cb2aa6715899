"""End-to-end ``fit`` from torch Datasets against pytorch-adapt's own pipeline, same method.

pytorch-adapt side, as its README shows for use without a framework: ``SourceDataset`` /
``TargetDataset`` / ``CombinedSourceAndTargetDataset`` in a ``DataLoader``, ``batch_to_device``
and ``adapter.training_step`` per batch. Our side: ``model.fit(source_dataset, target_dataset)``.
Same LeNet, a linear classifier, the same 3-layer discriminator without BatchNorm, SGD
(lr 0.01, momentum 0.9, constant), batch 64 per domain, data loading included in the time.

Datasets are (a) a generic map-style Dataset read item by item (both libraries collate), and
(b) a ``TensorDataset`` (our engine slices its tensors directly; pytorch-adapt still collates).
Target on CPU: ratio (ours / theirs) <= 1.0.

    python benchmarks/bench_vs_pytorch_adapt.py [speed] [--steps 150] [--device cpu]

``accuracy``: target accuracy of each method at **this library's defaults** (``create(name,
backbone=ConvNet, num_classes=10)``, ``fit(steps=..., batch_size=64, seed=...)``, nothing else set,
as a new user would) against **pytorch-adapt's same method at its own settings** (its adapter in its
own loop as its README shows, Adam for every model at ``--peer-lr``, default 1e-3: the setting of the
comparison in issue 31; pytorch-adapt's own default is Adam 1e-4), same backbone and initial weights,
same data, same steps, on the offline image shifts of the shift zoo, paired by seed. Each finished
run is appended to ``--out`` (a CSV; a rerun skips the runs it holds), then the paired table prints.

    python benchmarks/bench_vs_pytorch_adapt.py accuracy [--steps 500,3000] [--seeds 2] [--jobs 2]
"""

from __future__ import annotations

import argparse
import copy
import itertools
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _pytorch_adapt import make_adapter  # benchmarks/ is on sys.path when run as a script
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import adapt
from adapt import methods
from adapt.bench.runner import source_commit
from adapt.data.synthetic import optdigits_shift, optdigits_shifts, printed_digit_shift, rotated_optdigits
from adapt.models import ConvNet, LeNet

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
    adapter, _ = make_adapter(name, backbone, 500, NUM_CLASSES, device, discriminator_hidden=1024)
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


def speed(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--methods", default=",".join(OURS))
    args = parser.parse_args(argv)
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


# ---------------------------------------------------------------- accuracy at each library's own settings

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _rotated(seed: int) -> Arrays:
    domains = rotated_optdigits(seed)
    return (*domains[0], *domains[45])


#: The image shifts of the shift zoo (adapt/bench/suites/zoo-tune.toml, zoo-confirm.toml), by half, and
#: three added in 0.3.1 (not yet in the zoo suites): printed -> handwritten digits and a dead-leaves
#: blend for tuning, handwritten -> printed in other typefaces for confirmation (whose cluttered RGB
#: blend is optdigits-m, over photos); and in 0.5.0 a label shift for tuning (classes 5-9 at a fifth),
#: so that the tuning half has one of the kind the confirmation half's `imbalanced` is.
SHIFTS: dict[str, tuple[str, Callable[[int], Arrays]]] = {
    "rotated-optdigits 0->45": ("tuning", _rotated),
    "optdigits clean->noise": ("tuning", partial(optdigits_shifts, "clean", "noise")),
    "optdigits clean->scale": ("tuning", partial(optdigits_shifts, "clean", "scale")),
    "printed-digits serif->optdigits": ("tuning", partial(printed_digit_shift, "serif", "optdigits")),
    "optdigits->optdigits-leaves": ("tuning", partial(optdigits_shift, backgrounds="leaves")),
    "optdigits clean->minority": ("tuning", partial(optdigits_shifts, "clean", "minority")),
    "optdigits->optdigits-m": ("confirmation", optdigits_shift),
    "optdigits clean->blur": ("confirmation", partial(optdigits_shifts, "clean", "blur")),
    "optdigits clean->contrast": ("confirmation", partial(optdigits_shifts, "clean", "contrast")),
    "optdigits clean->thick": ("confirmation", partial(optdigits_shifts, "clean", "thick")),
    "optdigits clean->imbalanced": ("confirmation", partial(optdigits_shifts, "clean", "imbalanced")),
    "printed-digits optdigits->sans": ("confirmation", partial(printed_digit_shift, "optdigits", "sans")),
}
ACCURACY_METHODS = ("source_only", "dann", "dan", "coral", "cdan", "mcc")
FEATURES = 64  # ConvNet's default out_features


def _backbone(channels: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)  # the same initial weights for both libraries
    return ConvNet(channels)


def ours_accuracy(method: str, data: Arrays, steps: int, seed: int) -> float:
    xs, ys, xt, yt = data
    model = methods.create(method, backbone=_backbone(xs.shape[1], seed), num_classes=NUM_CLASSES)
    model.fit((xs, ys), xt, steps=steps, batch_size=BATCH, seed=seed, verbose=False)
    return model.score(xt, yt)


def theirs_accuracy(method: str, data: Arrays, steps: int, seed: int, lr: float) -> float:
    from pytorch_adapt.datasets import CombinedSourceAndTargetDataset, SourceDataset, TargetDataset

    xs, ys, xt, yt = (torch.from_numpy(a) for a in data)
    torch.manual_seed(seed)
    np.random.seed(seed)  # pytorch-adapt draws the source index of each pair with numpy
    backbone = _backbone(xs.shape[1], seed)
    adapter, models = make_adapter(method, backbone, FEATURES, NUM_CLASSES, torch.device("cpu"),
                                   optimizer=(torch.optim.Adam, {"lr": lr}))  # fmt: skip
    combined = CombinedSourceAndTargetDataset(
        SourceDataset(TensorDataset(xs, ys)), TargetDataset(TensorDataset(xt, torch.zeros_like(yt)))
    )
    loader = DataLoader(combined, batch_size=BATCH, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(seed))  # fmt: skip
    batches = itertools.chain.from_iterable(itertools.repeat(loader))
    for _, batch in zip(range(steps), batches):
        adapter.training_step(batch)
    for model in models.values():
        model.eval()
    with torch.no_grad():
        predictions = torch.cat([models["C"](models["G"](x)).argmax(1) for x in xt.split(256)])
    return float((predictions == yt).float().mean())


def _one_run(key: dict) -> dict:
    torch.set_num_threads(1)  # one core per run: --jobs runs side by side on the free cores
    data = SHIFTS[key["shift"]][1](key["seed"])
    start = time.perf_counter()
    if key["library"] == "adapt":
        acc = ours_accuracy(key["method"], data, key["steps"], key["seed"])
    else:
        acc = theirs_accuracy(key["method"], data, key["steps"], key["seed"], key["peer_lr"])
    return {**key, "accuracy": 100 * acc, "seconds": time.perf_counter() - start}


KEY = ["split", "shift", "method", "library", "steps", "seed", "peer_lr"]


def _planned(args: argparse.Namespace) -> list[dict]:
    return [
        {
            "split": SHIFTS[shift][0],
            "shift": shift,
            "method": m,
            "library": lib,
            "steps": steps,
            "seed": seed,
            "peer_lr": args.peer_lr,
        }
        for steps in map(int, args.steps.split(","))
        for shift in args.shifts.split(",")
        for seed in range(args.seeds)
        for m in args.methods.split(",")
        for lib in ("adapt", "pytorch-adapt")
    ]


def _interval(values: pd.Series) -> str:
    from scipy import stats

    if len(values) < 2:
        return f"{values.mean():+.1f}"
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / len(values) ** 0.5
    return f"{values.mean():+.1f} ± {half:.1f}"


def paired_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per split, method and budget: each library's mean, its gain over its own SourceOnly, its
    negative-transfer rate (pairs more than 2 points below its own SourceOnly), and the paired difference."""
    wide = runs.pivot_table(index=["split", "shift", "steps", "seed"], columns=["library", "method"], values="accuracy")
    rows = []
    for lib in wide.columns.get_level_values("library").unique():
        base = wide[(lib, "source_only")]
        for method in [m for m in ACCURACY_METHODS if (lib, m) in wide.columns and m != "source_only"]:
            gain = (wide[(lib, method)] - base).dropna()
            for (split, steps), g in gain.groupby(level=["split", "steps"]):
                acc = wide[(lib, method)].loc[g.index]
                rows.append({"split": split, "steps": steps, "method": method, "library": lib, "accuracy": acc.mean(),
                             "gain over own SourceOnly": _interval(g), "negative transfer": f"{(g < -2).mean():.0%}",
                             "pairs": len(g)})  # fmt: skip
    table = pd.DataFrame(rows)
    libs = list(wide.columns.get_level_values("library").unique())
    if len(libs) == 2:
        diff = []
        for method in table["method"].unique():
            d = (wide[(libs[0], method)] - wide[(libs[1], method)]).dropna()
            for (split, steps), g in d.groupby(level=["split", "steps"]):
                diff.append({"split": split, "steps": steps, "method": method, "adapt - peer (points)": _interval(g)})
        table = table.merge(pd.DataFrame(diff), on=["split", "steps", "method"], how="left")
    return table.sort_values(["split", "steps", "method", "library"])


def run_missing(planned: list[dict], key: list[str], worker: Callable[[dict], dict], out: Path, jobs: int,
                describe: Callable[[dict], str]) -> None:  # fmt: skip
    """Run the ``planned`` runs that ``out`` (a CSV) does not hold yet, ``jobs`` at a time, appending each
    finished row (with the library's version and commit) as it comes: a rerun resumes."""
    done = pd.read_csv(out) if out.exists() else pd.DataFrame(columns=key)
    have = set(map(tuple, done[key].astype(str).values))
    todo = [k for k in planned if tuple(str(k[c]) for c in key) not in have]
    print(f"{len(todo)} runs to go ({len(done)} in {out}), {jobs} at a time", flush=True)
    commit = source_commit() or {}
    meta = {"adapt": adapt.__version__, "commit": commit.get("sha", "")[:7] + ("+dirty" if commit.get("dirty") else ""),
            "torch": torch.__version__}  # fmt: skip
    with ProcessPoolExecutor(jobs) as pool:
        futures = [pool.submit(worker, k) for k in todo]
        for i, future in enumerate(as_completed(futures), 1):
            row = {**future.result(), **meta}
            pd.DataFrame([row]).to_csv(out, mode="a", header=not out.exists(), index=False)
            print(f"[{i}/{len(todo)}] {describe(row)}: {row['accuracy']:.1f} ({row['seconds']:.0f} s)", flush=True)


def accuracy(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench_vs_pytorch_adapt.py accuracy")
    parser.add_argument("--steps", default="500,3000")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--shifts", default=",".join(SHIFTS))
    parser.add_argument("--methods", default=",".join(ACCURACY_METHODS))
    parser.add_argument("--peer-lr", type=float, default=1e-3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("vs_pytorch_adapt_accuracy.csv"))
    args = parser.parse_args(argv)
    unknown = sorted(set(args.shifts.split(",")) - set(SHIFTS))
    unknown += sorted(set(args.methods.split(",")) - set(ACCURACY_METHODS))
    if unknown:
        parser.error(f"unknown shift or method {', '.join(unknown)}; shifts: {', '.join(SHIFTS)}; "
                     f"methods: {', '.join(ACCURACY_METHODS)}")  # fmt: skip
    run_missing(_planned(args), KEY, _one_run, args.out, args.jobs,
                lambda r: f"{r['shift']} {r['method']} {r['library']} @{r['steps']} seed {r['seed']}")  # fmt: skip
    runs = pd.read_csv(args.out)
    runs = runs[
        runs["shift"].isin(args.shifts.split(","))
        & runs["method"].isin(args.methods.split(","))
        & (runs["peer_lr"] == args.peer_lr)
        & runs["steps"].isin(map(int, args.steps.split(",")))
    ]
    print(
        f"\ntarget accuracy (%), ConvNet, batch {BATCH}+{BATCH}; adapt at its defaults, "
        f"pytorch-adapt with Adam lr {args.peer_lr:g}; mean over shifts x seeds, ± 95% t-interval over them"
    )
    print(paired_table(runs).to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    print("\nper shift (mean over seeds):")
    per_shift = runs.pivot_table(index=["split", "shift", "steps"], columns=["method", "library"], values="accuracy")
    print(per_shift.rename(columns={"pytorch-adapt": "pa"}, level="library").round(1).to_string())


def main() -> None:
    import sys

    argv = sys.argv[1:]
    command = argv.pop(0) if argv and argv[0] in ("speed", "accuracy") else "speed"
    (accuracy if command == "accuracy" else speed)(argv)


if __name__ == "__main__":
    main()
