"""The Ray executor against a local Ray started by the test: same records as the local executor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")

BIN = Path(sys.executable).parent / "adapt-bench"


def _records(out: Path) -> dict[str, dict]:
    return {r["id"]: r for r in (json.loads(p.read_text()) for p in (out / "runs").glob("*.json"))}


@pytest.mark.slow
def test_ray_executor_gives_the_local_results_on_the_quick_suite(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "RAY_USAGE_STATS_ENABLED": "0"}
    subset = ["--suite", "quick", "--methods", "source_only,dann", "--seeds", "1", "--quiet", "--no-report"]
    local = subprocess.run([str(BIN), "run", *subset, "--out", str(tmp_path / "local"), "--jobs", "2"],
                           env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert local.returncode == 0, local.stderr
    ray = subprocess.run([str(BIN), "run", *subset, "--out", str(tmp_path / "ray"), "--executor", "ray"],
                         env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert ray.returncode == 0, ray.stderr[-3000:]
    by_local, by_ray = _records(tmp_path / "local"), _records(tmp_path / "ray")
    assert len(by_local) == 8 and set(by_ray) == set(by_local)
    for run_id, record in by_local.items():
        assert by_ray[run_id]["status"] == "ok" and by_ray[run_id]["threads"] == record["threads"] == 1
        assert by_ray[run_id]["accuracy"] == record["accuracy"], record["config"]
    again = subprocess.run([str(BIN), "run", *subset, "--out", str(tmp_path / "ray"), "--executor", "ray"],
                           env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert again.returncode == 0 and "8 already done, 0 finished now" in again.stdout  # resumes like local


@pytest.mark.slow
def test_sigterm_during_a_ray_sweep_is_handled_like_ctrl_c(tmp_path):
    """Exit status 143 and the resume message, as without Ray. Ray's own shutdown now and then aborts
    in its C++ core when a task completes during it (exit status 1, a native stack trace, seen in
    about one try in five under pytest); the test allows that for two tries out of three, never a
    Python traceback or Ray's default SIGTERM exit (status 15 without our message)."""
    import signal
    import time

    env = {**os.environ, "PYTHONWARNINGS": "ignore", "RAY_USAGE_STATS_ENABLED": "0"}
    outcomes = []
    for attempt in range(3):
        out = tmp_path / f"ray{attempt}"
        proc = subprocess.Popen([str(BIN), "run", "--suite", "quick", "--methods", "dann", "--out", str(out),
                                 "--executor", "ray", "--quiet", "--no-report"], env=env, stderr=subprocess.PIPE,
                                text=True)  # fmt: skip
        deadline = time.time() + 300
        while time.time() < deadline and not list((out / "runs").glob("*.json")):
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
        assert "Traceback (most recent call last)" not in stderr and proc.returncode != 15, stderr[-3000:]
        outcomes.append(proc.returncode)
        if proc.returncode == 143:
            assert "terminated (SIGTERM); finished runs are saved" in stderr
            break
        assert proc.returncode == 1 and "ray::core" in stderr, stderr[-3000:]  # Ray's native abort
    assert outcomes[-1] == 143, outcomes


def test_ray_executor_needs_the_extra_or_says_how_to_get_it(tmp_path, monkeypatch):
    from adapt.bench import executors

    def missing(module, extra, purpose):
        raise ModuleNotFoundError(
            f"{purpose} needs ray, which the core install leaves out: pip install 'adapt-uda[{extra}]'"
        )

    monkeypatch.setattr(executors, "require", missing)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'adapt-uda\[ray\]'"):
        next(executors.ray_results([object()], "cpu", lambda *a: "ok", executors.Executor("ray")))
