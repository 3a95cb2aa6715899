"""MMD cost: time and peak memory of forward + backward, ours against pytorch-adapt's MMDLoss.

pytorch-adapt's (and TLlib's) "linear" MMD still builds n x n distance matrices; ours evaluates
only the n/2 pairs it uses, so it is O(n d) in time and memory. Each measurement runs in a fresh
subprocess so that peak RSS (``ru_maxrss``) belongs to that call alone. d = 256, CPU.

    python benchmarks/bench_mmd.py [--sizes 512,1024,2048,4096,8192]
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
impl, n, d, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(0)
x = torch.randn(n, d, requires_grad=True)
y = (torch.randn(n, d) + 0.1).requires_grad_(True)
multipliers = (0.125, 0.25, 0.5, 1.0, 2.0)
if impl.startswith("pytorch_adapt"):
    from pytorch_adapt.layers import MMDLoss
    fn = MMDLoss(kernel_scales=torch.tensor([1 / m for m in multipliers]), mmd_type=impl.split(":")[1])
else:
    from adapt.losses import mmd
    estimator, _, chunk = impl.split(":")[1].partition("/")
    kwargs = dict(multipliers=multipliers, estimator=estimator, chunk_size=int(chunk) if chunk else None)
    fn = lambda a, b: mmd(a, b, **kwargs)
fn(x[:64], y[:64]).backward()  # warm-up
x.grad = y.grad = None
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
for _ in range(repeats):
    t = time.perf_counter()
    fn(x, y).backward()
    times.append(time.perf_counter() - t)
    x.grad = y.grad = None
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
print(json.dumps({"seconds": sorted(times)[len(times) // 2], "peak_mib": peak / 1024}))
"""

IMPLS = {
    "adapt linear": "adapt:linear",
    "pytorch-adapt linear": "pytorch_adapt:linear",
    "adapt unbiased": "adapt:unbiased",
    "adapt unbiased, chunks of 1024": "adapt:unbiased/1024",
    "pytorch-adapt quadratic": "pytorch_adapt:quadratic",
}


def measure(impl: str, n: int, d: int, repeats: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", WORKER, impl, str(n), str(d), str(repeats)], capture_output=True, text=True, timeout=900
    )
    if out.returncode != 0:
        return {"seconds": float("nan"), "peak_mib": float("nan"), "error": out.stderr.strip().splitlines()[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="512,1024,2048,4096,8192")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for n in map(int, args.sizes.split(",")):
        for label, impl in IMPLS.items():
            r = measure(impl, n, args.dim, args.repeats)
            rows.append(
                {"n per domain": n, "implementation": label, "ms": 1000 * r["seconds"], "peak MiB": r["peak_mib"]}
            )
            print(f"n={n:5d} {label:32s} {1000 * r['seconds']:10.2f} ms {r['peak_mib']:9.1f} MiB", flush=True)
    table = pd.DataFrame(rows)
    print(f"\nforward + backward, d = {args.dim}, CPU, median of {args.repeats}")
    print(table.pivot(index="n per domain", columns="implementation", values="ms").round(2).to_string())
    print(table.pivot(index="n per domain", columns="implementation", values="peak MiB").round(1).to_string())
    lin = table.set_index(["n per domain", "implementation"])
    print("\nspeed-up of adapt linear over pytorch-adapt linear (target >= 10x at n = 4096):")
    for n in sorted(table["n per domain"].unique()):
        ratio = lin.loc[(n, "pytorch-adapt linear"), "ms"] / lin.loc[(n, "adapt linear"), "ms"]
        mem = lin.loc[(n, "pytorch-adapt linear"), "peak MiB"], lin.loc[(n, "adapt linear"), "peak MiB"]
        print(f"  n={n:5d}: {ratio:8.1f}x faster; peak memory {mem[0]:.1f} MiB vs {mem[1]:.1f} MiB")


if __name__ == "__main__":
    main()
