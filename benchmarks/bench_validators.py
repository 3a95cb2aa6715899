"""Validator cost: time and peak memory of each label-free score at 1k to 64k target examples.

Every validator but SND is linear in the number of target examples n. SND compares every example with
every other (O(n^2)); beyond ``adapt.validators.scores.SND_MAX_ROWS`` rows it averages over a uniform
sample of rows, each still against all n examples, and keeps its similarities in blocks of
``SND_BLOCK`` elements. The baseline is exact SND (``max_rows=None``) in the same process; the ratio
column is its time over the sampled one's, the error column the sampled score's relative difference from
it. Inside ``fit`` and the harness the validators see at most 4,000 target examples
(``collect_outputs(max_examples=4000)``); these sizes are for scoring a whole target directly.

Random logits (31 classes) and features (256 wide), CPU. Each measurement runs in a fresh subprocess so
that its peak RSS (``ru_maxrss``) belongs to that call alone.

    python benchmarks/bench_validators.py [--sizes 1024,2048,...,65536] [--exact-up-to 16384]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pandas as pd

WORKER = r"""
import json, resource, sys, time, warnings
warnings.filterwarnings("ignore")
import torch
from adapt.validators import scores
name, n, classes, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(1)
generator = torch.Generator().manual_seed(0)
logits = torch.randn(n, classes, generator=generator) * 3
features = torch.randn(n, dim, generator=generator) + logits.argmax(1, keepdim=True).float()
source = torch.randn(n, dim, generator=generator) + 0.5
calls = {
    "entropy": lambda: scores.entropy_score(logits),
    "im": lambda: scores.im_score(logits),
    "bnm": lambda: scores.bnm_score(logits),
    "snd": lambda: scores.snd_score(logits),
    "snd exact": lambda: scores.snd_score(logits, max_rows=None),
    "class_ami": lambda: scores.class_ami_score(features, logits),
    "dev weights": lambda: float(scores.domain_importance_weights(source, source[: n // 10], features).mean()),
}
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
value = calls[name]()
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
print(json.dumps({"seconds": seconds, "peak_mib": peak / 1024, "value": value}))
"""

VALIDATORS = ("entropy", "im", "bnm", "class_ami", "dev weights", "snd", "snd exact")


def measure(name: str, n: int, classes: int, dim: int) -> dict:
    command = [sys.executable, "-c", WORKER, name, str(n), str(classes), str(dim)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines() or ["no output"]
        return {"seconds": float("nan"), "peak_mib": float("nan"), "value": float("nan"), "error": lines[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1024,2048,4096,8192,16384,32768,65536")
    parser.add_argument("--exact-up-to", type=int, default=16384, help="largest n at which exact SND runs")
    parser.add_argument("--classes", type=int, default=31)
    parser.add_argument("--dim", type=int, default=256)
    args = parser.parse_args()
    rows = []
    for n in map(int, args.sizes.split(",")):
        for name in VALIDATORS:
            if name == "snd exact" and n > args.exact_up_to:
                continue
            r = measure(name, n, args.classes, args.dim)
            rows.append({"n": n, "validator": name, "seconds": r["seconds"], "peak MiB": r["peak_mib"],
                         "value": r["value"], "error": r.get("error", "")})  # fmt: skip
            line = f"n={n:6d} {name:12s} {r['seconds']:9.3f} s {r['peak_mib']:8.1f} MiB {r.get('error', '')}"
            print(line, flush=True)
    frame = pd.DataFrame(rows)
    print("\n" + frame.pivot(index="n", columns="validator", values="seconds").round(3).to_string())
    snd = frame[frame.validator == "snd"].set_index("n")
    exact = frame[frame.validator == "snd exact"].set_index("n")
    both = snd.index.intersection(exact.index)
    compared = pd.DataFrame({
        "exact s": exact.loc[both, "seconds"], "sampled s": snd.loc[both, "seconds"],
        "exact / sampled time": exact.loc[both, "seconds"] / snd.loc[both, "seconds"],
        "exact MiB": exact.loc[both, "peak MiB"], "sampled MiB": snd.loc[both, "peak MiB"],
        "relative error": (snd.loc[both, "value"] - exact.loc[both, "value"]).abs() / exact.loc[both, "value"].abs(),
    })  # fmt: skip
    print("\nSND, sampled rows against the exact score (baseline):\n" + compared.round(4).to_string())
    growth = snd["seconds"].iloc[-1] / snd["seconds"].iloc[0]
    first, last = snd.index[0], snd.index[-1]
    print(f"\nSND time from n={first} to n={last}: x{growth:.1f} (n x{last / first:.0f})")


if __name__ == "__main__":
    main()
