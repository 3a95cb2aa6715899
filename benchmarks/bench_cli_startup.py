"""How long ``adapt-bench`` takes to answer ``--help``, ``--version`` and ``list``.

Each command runs in a fresh process ``--repeats`` times; the table gives the median wall time and
its ratio to a bare ``python -c pass`` and to ``python -c "import torch"`` measured in the same run
(the CLI must not pay for torch to print help). Target: under 1 s for all three.

    python benchmarks/bench_cli_startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd


def cli() -> list[str]:
    """The installed ``adapt-bench`` script next to this interpreter, else ``python -m adapt.bench.cli``."""
    script = Path(sys.executable).with_name("adapt-bench")
    if script.exists():
        return [str(script)]
    found = shutil.which("adapt-bench")
    return [found] if found else [sys.executable, "-m", "adapt.bench.cli"]


def median_seconds(command: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    python = median_seconds([sys.executable, "-c", "pass"], args.repeats)
    torch_import = median_seconds([sys.executable, "-c", "import torch"], args.repeats)
    rows = []
    for label, extra in (("--help", ["--help"]), ("--version", ["--version"]), ("list", ["list"]),
                         ("run --help", ["run", "--help"])):  # fmt: skip
        seconds = median_seconds([*cli(), *extra], args.repeats)
        rows.append({"command": f"adapt-bench {label}", "seconds": seconds, "vs python": seconds / python,
                     "vs import torch": seconds / torch_import, "under 1 s": seconds < 1.0})  # fmt: skip
    print(f"python -c pass: {python:.3f} s; python -c 'import torch': {torch_import:.3f} s "
          f"(medians of {args.repeats})")  # fmt: skip
    print(pd.DataFrame(rows).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
