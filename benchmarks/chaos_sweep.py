"""Chaos check: kill a sweep again and again, resume it each time, and count what was lost.

A small offline sweep (``--jobs 2``, mid-run checkpoints every 200 steps) is started and killed at
random moments -- SIGKILL, SIGTERM or SIGINT, inside runs and between them -- then started again,
until it finishes. A verified download of a generated archive is killed during extraction the same
way. Then the final report is compared with an uninterrupted sweep's. It prints:

    kills, finished runs lost, corrupt files, orphan processes, report identical (yes/no),
    runs resumed from a checkpoint, runs restarted from step 0 after a kill

Goal: 0 lost, 0 corrupt, 0 orphans, identical, and no run restarted from step 0.

    python benchmarks/chaos_sweep.py [--kills 12] [--seed 0]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

SUITE = """
name = "chaos"
seeds = 3
[train]
steps = 2500
batch_size = 32
lr = 0.05
log_every = 100
[backbones.mlp]
kind = "mlp"
hidden = [32]
[[tasks]]
benchmark = "moons"
source = "source"
target = "rotated"
backbone = "mlp"
[methods.source_only]
[methods.dann]
"""
BIN = Path(sys.executable).with_name("adapt-bench")
# one thread per process everywhere: results must not depend on how busy the machine was
ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
SIGNALS = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def corrupt_records(out: Path) -> list[str]:
    bad = []
    for path in (out / "runs").glob("*.json"):
        try:
            record = json.loads(path.read_text())
            assert {"id", "config", "status"} <= set(record)
        except Exception:
            bad.append(path.name)
    return bad


def sweep(out: Path, suite: Path) -> list[str]:
    return [str(BIN), "run", "--suite", str(suite), "--out", str(out), "--jobs", "2", "--quiet", "--no-report",
            "--checkpoint-every", "200"]  # fmt: skip


def kill_sweeps(out: Path, suite: Path, kills: int, rng: random.Random) -> dict[str, int]:
    """Start, kill at a random moment, check, repeat; finish the sweep at the end."""
    stats = {"kills": 0, "lost": 0, "corrupt": 0, "orphans": 0, "in_flight": 0}
    killed_with_checkpoint: set[str] = set()
    for _ in range(kills):
        before = {p.name for p in (out / "runs").glob("*.json")} if (out / "runs").exists() else set()
        proc = subprocess.Popen(sweep(out, suite), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(4.0, 14.0))  # start-up (imports, workers) takes a few seconds
        if proc.poll() is not None:  # it finished before the kill
            break
        workers = descendants(proc.pid)
        checkpoints = {p.stem for p in (out / "checkpoints").glob("*.pt")} if (out / "checkpoints").exists() else set()
        proc.send_signal(rng.choice(SIGNALS))
        proc.wait()
        stats["kills"] += 1
        deadline = time.time() + 10
        while time.time() < deadline and any(alive(w) for w in workers):
            time.sleep(0.2)
        stats["orphans"] += sum(alive(w) for w in workers)
        after = {p.name for p in (out / "runs").glob("*.json")}
        stats["lost"] += len(before - after)
        stats["corrupt"] += len(corrupt_records(out))
        finished = {name.removesuffix(".json") for name in after}
        killed_with_checkpoint |= checkpoints - finished
        stats["in_flight"] += len(checkpoints - finished)
    done = subprocess.run(sweep(out, suite), env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    records = {p.stem: json.loads(p.read_text()) for p in (out / "runs").glob("*.json")}
    stats["resumed"] = sum(1 for r in records.values() if r.get("resumed_from_step", 0) > 0)
    stats["restarted_from_0"] = sum(1 for i in killed_with_checkpoint if records[i].get("resumed_from_step", 0) == 0)
    stats["corrupt"] += len(corrupt_records(out))
    return stats


def kill_extractions(root: Path, kills: int, rng: random.Random) -> dict[str, int]:
    """Kill a verified download + extraction of a generated archive; a partial dataset must never appear."""
    staged = root / "staged" / "office31"
    from PIL import Image

    for domain in ("amazon", "webcam"):
        for c in range(31):
            folder = staged / domain / "images" / f"class{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(20):
                Image.new("RGB", (64, 64), (c * 8, k * 12, 90)).save(folder / f"{k}.png")
    archive = root / "mirror" / "office31.tar.gz"
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(staged, arcname="office31")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    script = (
        "import sys; from adapt.data import sources; from adapt.data.download import fetch\n"
        f"sources.SOURCES['office31'] = sources.Source('https://x.invalid', 'office31.tar.gz', {md5!r}, 'office31')\n"
        f"fetch('office31', {str(root / 'data')!r}, 'layout')\n"
    )
    env = {**ENV, "ADAPT_DATA_MIRROR": archive.parent.as_uri(), "ADAPT_ALLOW_FILE_MIRROR": "1"}
    stats = {"kills": 0, "corrupt": 0}
    target = root / "data" / "office31"
    for _ in range(kills):
        if target.exists():
            shutil.rmtree(target)
        proc = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 2.5))
        if proc.poll() is None:
            proc.send_signal(rng.choice(SIGNALS))
            stats["kills"] += 1
        proc.wait()
        if target.exists():  # whatever is there must be complete
            marker = target / ".adapt-complete-office31.json"
            entries = json.loads(marker.read_text())["entries"] if marker.exists() else None
            complete = entries is not None and all((target / e / "images").is_dir() for e in entries)
            files = sum(1 for _ in target.rglob("*.png"))
            stats["corrupt"] += int(not complete or files != 2 * 31 * 20)
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        suite = root / "chaos.toml"
        suite.write_text(SUITE)
        start = time.perf_counter()
        reference = subprocess.run(sweep(root / "reference", suite), env=ENV, capture_output=True, text=True)
        assert reference.returncode == 0, reference.stderr
        uninterrupted = time.perf_counter() - start
        stats = kill_sweeps(root / "chaos", suite, args.kills, rng)
        extraction = kill_extractions(root, max(4, args.kills // 2), rng)
        reports = [subprocess.run([str(BIN), "report", str(root / name), "--no-figures"], env=ENV, capture_output=True,
                                  text=True) for name in ("reference", "chaos")]  # fmt: skip
        identical = (root / "reference" / "report" / "summary.csv").read_bytes() == (
            root / "chaos" / "report" / "summary.csv"
        ).read_bytes() and all(r.returncode == 0 for r in reports)
    print(f"uninterrupted sweep: {uninterrupted:.0f} s")
    print(f"sweep kills: {stats['kills']} (runs in flight with a checkpoint: {stats['in_flight']}); "
          f"extraction kills: {extraction['kills']}")  # fmt: skip
    print(f"finished runs lost: {stats['lost']}; corrupt files: {stats['corrupt'] + extraction['corrupt']}; "
          f"orphan processes: {stats['orphans']}; report identical: {'yes' if identical else 'no'}; "
          f"runs resumed from a checkpoint: {stats['resumed']}; restarted from step 0 after a kill: "
          f"{stats['restarted_from_0']}")  # fmt: skip
    goal = (stats["lost"] == stats["corrupt"] == extraction["corrupt"] == stats["orphans"] == 0 and identical
            and stats["restarted_from_0"] == 0)  # fmt: skip
    print("goal met: 0 lost, 0 corrupt, 0 orphans, identical, no restart from step 0" if goal else "GOAL NOT MET")


if __name__ == "__main__":
    main()
