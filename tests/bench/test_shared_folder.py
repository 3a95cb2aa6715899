"""One results folder, many processes: concurrent sweeps split the work, live temporary files survive
another sweep's start-up, reports take turns (adapt/_files.py, adapt/bench/runner.py)."""

import json
import os
import subprocess
import sys
import threading

import pytest
from helpers import BIN

from adapt._files import HOST, claim, owner_is_gone, remove_orphans, temporary_sibling

SUITE = """
name = "shared"
seeds = 3

[train]
steps = 150
batch_size = 32
lr = 0.05
log_every = 50

[backbones.mlp]
kind = "mlp"
hidden = [16]

[[tasks]]
benchmark = "moons"
source = "source"
target = "rotated"
backbone = "mlp"

[methods.source_only]
[methods.dann]
discriminator_hidden = [16]
"""


def _sweep(suite, out, env):
    return subprocess.Popen([str(BIN), "run", "--suite", str(suite), "--out", str(out), "--quiet", "--no-report"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip


def _records(out):
    return {p.name: json.loads(p.read_text()) for p in (out / "runs").glob("*.json")}


@pytest.mark.slow
def test_two_sweeps_into_one_folder_train_each_run_once_and_match_one_sweep(tmp_path):
    suite = tmp_path / "shared.toml"
    suite.write_text(SUITE)
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}  # the same threads in every sweep
    shared, alone = tmp_path / "shared", tmp_path / "alone"
    first, second = _sweep(suite, shared, env), _sweep(suite, shared, env)
    outputs = [p.communicate(timeout=600) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    finished = [int(out.split(" finished now")[0].rsplit(", ", 1)[1]) for out, _ in outputs]
    assert sum(finished) == 6, outputs  # each of the 6 runs trained by exactly one of the two sweeps
    single = _sweep(suite, alone, env)
    assert single.wait(timeout=600) == 0
    together, one = _records(shared), _records(alone)
    assert set(together) == set(one) and len(one) == 6
    for name, record in one.items():
        assert together[name]["accuracy"] == record["accuracy"], name
        timeless = [[{k: v for k, v in row.items() if k != "seconds"} for row in r["curve"]]
                    for r in (together[name], record)]  # fmt: skip
        assert timeless[0] == timeless[1], name
    assert not list((shared / "claims").glob("*.lock"))  # released with the records


def test_a_sweep_starting_beside_a_live_one_leaves_its_temporary_files_alone(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    live = temporary_sibling(runs / "abc.json")  # this process: alive
    live.write_text("{}")
    dead_pid = _dead_pid()
    dead = runs / f".def.json.{dead_pid}@{HOST}.tmp"
    dead.write_text("{}")
    legacy = runs / f".ghi.json.{dead_pid}.tmp"  # named before 0.2.2: this host's
    legacy.write_text("{}")
    foreign = runs / f".jkl.json.{os.getpid()}@another-host.tmp"  # cannot be checked: kept a day
    foreign.write_text("{}")
    assert not owner_is_gone(live) and owner_is_gone(dead) and owner_is_gone(legacy) and not owner_is_gone(foreign)
    assert sorted(remove_orphans(runs)) == sorted([dead, legacy])
    assert live.exists() and foreign.exists()


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid  # reaped: no process has it (pids are not reused this soon)


def test_a_claim_is_exclusive_and_goes_with_its_holder(tmp_path):
    path = tmp_path / "claims" / "run.lock"
    with claim(path) as first:
        assert first
        with claim(path) as second:
            assert not second  # another open file description: refused at once
    with claim(path) as again:
        assert again  # released
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom pathlib import Path\nfrom adapt._files import claim\n"
        f"with claim(Path({str(path)!r})) as held:\n    print(held, flush=True)\n    time.sleep(60)\n")],
        stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout.readline().strip() == "True"
    with claim(path) as taken:
        assert not taken
    holder.kill()  # SIGKILL: the operating system drops its lock
    holder.wait()
    with claim(path) as taken:
        assert taken


def test_reports_into_one_folder_take_turns(tmp_path):
    path = tmp_path / ".report.lock"
    order = []

    def report(name, hold):
        with claim(path, wait=True):
            order.append(f"{name} in")
            hold.wait(timeout=5)
            order.append(f"{name} out")

    first_hold, second_hold = threading.Event(), threading.Event()
    first = threading.Thread(target=report, args=("first", first_hold))
    first.start()
    while not order:
        pass
    second = threading.Thread(target=report, args=("second", second_hold))
    second.start()
    second_hold.set()
    first_hold.set()
    first.join(), second.join()
    assert order == ["first in", "first out", "second in", "second out"]


def test_a_dead_worker_is_recorded_against_its_run_and_the_sweep_goes_on():
    """A worker that dies under a run (here: it exits; in life: killed, out of memory) breaks its pool; the
    runs it broke are tried once more in a fresh pool, and the one whose worker died twice is reported."""
    from helpers import work_that_dies_on

    from adapt.bench.executors import WORKER_DIED, local_results

    statuses = dict(local_results(["a", "die", "b", "c", "d"], jobs=2, device="cpu", work=work_that_dies_on,
                                  show=False))  # fmt: skip
    assert statuses == {"a": "ok", "die": WORKER_DIED, "b": "ok", "c": "ok", "d": "ok"}


def test_a_worker_death_becomes_a_record_that_the_next_sweep_retries(tmp_path, monkeypatch):
    from adapt.bench import runner
    from adapt.bench.executors import WORKER_DIED
    from adapt.bench.suite import load_suite

    suite = tmp_path / "shared.toml"
    suite.write_text(SUITE.replace("seeds = 3", "seeds = 1").replace("steps = 150", "steps = 20"))
    loaded = load_suite(str(suite))
    real = runner._results
    monkeypatch.setattr(runner, "_results", lambda pending, *args: ((spec, WORKER_DIED) for spec in pending))
    counts = runner.run_sweep(loaded, tmp_path / "out", verbose=False)
    assert counts["failed"] == 2
    records = _records(tmp_path / "out")
    assert {r["failure"] for r in records.values()} == {WORKER_DIED}
    assert all("died" in r["error"] for r in records.values())
    monkeypatch.setattr(runner, "_results", real)
    again = runner.run_sweep(loaded, tmp_path / "out", verbose=False)  # no --retry-failed needed
    assert (again["ok"], again["failed_before"]) == (2, 0)


@pytest.mark.parametrize("error, kind", [
    (OSError(28, "No space left on device", "/results/runs/x.json"), "disk_full"),
    (RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 12096 vs 11992"), "disk_full"),
    (MemoryError(), "out_of_memory"),
    (ValueError("a bug"), "error"),
])  # fmt: skip
def test_failures_are_recorded_by_kind_and_transient_ones_are_retried(error, kind):
    from adapt.bench.runner import RETRIED_FAILURES, _failure_kind, _should_run

    assert _failure_kind(error) == kind
    record = {"status": "failed", "failure": kind, "error": f"{type(error).__name__}: {error}"}
    assert _should_run(record, retry_failed=False) == (kind in RETRIED_FAILURES)
    assert _should_run(record, retry_failed=True)
