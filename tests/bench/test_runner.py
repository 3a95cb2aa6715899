"""The sweep runner: resume after SIGKILL, failed runs, Ctrl-C, search, sweep options and scoring."""

import json
import os
import signal
import subprocess
import time

import pytest
import torch
from helpers import BIN, _moons, cli, write_suite
from torch import nn
from torch.utils.data import TensorDataset

from adapt import methods
from adapt.bench import load_suite, run_sweep, write_report
from adapt.bench.runner import expand
from adapt.bench.suite import SuiteError
from adapt.data import make_task
from adapt.methods import registry


def test_validators_score_the_evaluation_view_of_the_target(monkeypatch):
    from adapt.bench import runner, scoring

    xs, ys, xt, yt = _moons()
    augmented, plain = TensorDataset(xt + torch.randn_like(xt), yt), TensorDataset(xt, yt)
    t = make_task("moons", "s", TensorDataset(xs, ys), "t", augmented, ["a", "b"], (2,), target_eval_data=plain)
    assert torch.equal(t.target_eval[0][0], xt[0]) and not torch.equal(t.target_train[0][0], xt[0])

    seen = {}
    import adapt.validators as validators

    class Recording(validators.ValidationCallback):
        def __init__(self, names, target, *args, **kwargs):
            seen["target"] = target
            super().__init__(names, target, *args, **kwargs)

    monkeypatch.setattr(scoring, "ValidationCallback", Recording)
    monkeypatch.setattr(runner, "_load_task", lambda *args: t)
    spec = expand(_single_run_suite(tmp_suite=load_suite("quick")))[0]
    record = runner.execute(spec, device="cpu")
    assert record["status"] == "ok", record.get("error")
    assert seen["target"] is t.target_eval


def _single_run_suite(tmp_suite):
    tmp_suite.tasks = tmp_suite.tasks[:1]
    tmp_suite.methods = {"source_only": {}}
    tmp_suite.seeds = 1
    tmp_suite.train = {**tmp_suite.train, "steps": 20}
    tmp_suite.validators = ["im"]
    tmp_suite.source_holdout = 0.0
    tmp_suite.select_by = "im"
    return tmp_suite


def _summary_without_time(out):
    return (out / "report" / "summary.csv").read_text()


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted_sweep(tmp_path):
    suite = write_suite(tmp_path, seeds=4, steps=150)
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([str(BIN), "run", "--suite", str(suite), "--out", str(killed), "--quiet", "--no-report"],
                            env=env, start_new_session=True)  # fmt: skip
    deadline = time.time() + 300
    while time.time() < deadline and len(list((killed / "runs").glob("*.json"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = {p.name: p.stat().st_mtime_ns for p in (killed / "runs").glob("*.json")}
    assert 2 <= len(first) < 8, "the kill must land in the middle of the sweep"
    for path in (killed / "runs").glob("*.json"):
        json.loads(path.read_text())  # every record is complete
    resumed = cli("run", "--suite", suite, "--out", killed, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(first)} already done" in resumed.stdout
    for name, mtime in first.items():
        assert (killed / "runs" / name).stat().st_mtime_ns == mtime  # not redone
    assert not list((killed / "runs").glob(".*.tmp"))
    assert cli("run", "--suite", suite, "--out", clean, "--quiet").returncode == 0
    assert _summary_without_time(killed) == _summary_without_time(clean)
    assert (killed / "report" / "summary.md").read_text() == (clean / "report" / "summary.md").read_text()


@pytest.fixture
def nan_method():
    @methods.register_method("nan_after_3_steps")
    class NanAfter3(methods.Adapter):
        def __init__(self, backbone: nn.Module, num_classes: int, **kwargs):
            super().__init__(backbone, num_classes, **kwargs)
            self.calls = 0

        def loss(self, batch, progress):
            self.calls += 1
            logits = self(batch.source_x)
            poison = torch.tensor(float("nan")) if self.calls > 3 else torch.tensor(0.0)
            return {"classification": self.classification_loss(logits, batch.source_y), "poison": poison}

    yield "nan_after_3_steps"
    registry.METHODS.remove("nan_after_3_steps")


def test_failing_run_is_recorded_and_others_complete(tmp_path, nan_method):
    suite = load_suite(str(write_suite(tmp_path, second=nan_method, second_hparams="")))
    counts = run_sweep(suite, tmp_path / "out", verbose=False)
    assert counts == {
        "total": 4,
        "skipped": 0,
        "ok": 2,
        "failed": 2,
        "elsewhere": 0,
        "failed_before": 0,
        "stale": 0,
        "stale_summary": "",
    }
    report = write_report(tmp_path / "out", figures=False)
    failed = report.failed
    assert len(failed) == 2 and set(failed["failed_step"]) == {3}
    assert failed["error"].str.contains("loss term 'poison' became non-finite").all()
    assert set(report.summary["method"]) == {"source_only"}


def test_search_default_draws_from_the_space_declared_beside_the_defaults(tmp_path):
    from adapt.bench.runner import expand
    from adapt.methods import DANN

    path = write_suite(tmp_path)
    text = path.read_text().replace("seeds = 2\n", "seeds = 2\nsearch_draws = 3\n") + '[search]\ndann = "default"\n'
    path.write_text(text)
    suite = load_suite(str(path))
    assert suite.search == {"dann": {k: list(v) for k, v in DANN.search_space.items()}}
    low, high = DANN.search_space["trade_off"][1:]
    draws = {s.hparams["trade_off"] for s in expand(suite) if s.method == "dann"}
    assert len(draws) == 3 and all(low <= d <= high for d in draws)
    path.write_text(text.replace('dann = "default"', 'source_only = "default"'))
    with pytest.raises(SuiteError, match=r"search.source_only: method 'source_only' declares no search space"):
        load_suite(str(path))
    path.write_text(text.replace('dann = "default"', "dann = 3"))
    with pytest.raises(SuiteError, match=r'search.dann: must be a table of ranges or "default"'):
        load_suite(str(path))


@pytest.mark.slow
def test_ctrl_c_stops_a_parallel_sweep_promptly(tmp_path):
    suite = write_suite(tmp_path, seeds=6, steps=300)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    # A test runner started in the background inherits an ignored SIGINT; give the CLI the default a
    # terminal user has.
    proc = subprocess.Popen([str(BIN), "run", "--suite", str(suite), "--out", str(out), "--jobs", "2", "--quiet"],
                            env=env, start_new_session=True, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    deadline = time.time() + 300
    while time.time() < deadline and not list((out / "runs").glob("*.json")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends: the whole process group
    start = time.time()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "rerun the same command to resume" in err
    assert time.time() - start < 20
    records = list((out / "runs").glob("*.json"))
    assert 1 <= len(records) < 12
    for path in records:
        json.loads(path.read_text())


def test_sweep_options_are_one_dataclass_and_keywords_change_its_fields(tmp_path):
    from adapt.bench.runner import SweepOptions

    suite = load_suite(str(write_suite(tmp_path, seeds=2, steps=20)))
    options = SweepOptions(methods=("source_only",), seeds=1, verbose=False)
    counts = run_sweep(suite, tmp_path / "out", options)
    assert (counts["total"], counts["ok"]) == (1, 1)
    counts = run_sweep(suite, tmp_path / "out", options, seeds=2)  # one more seed; the first is done
    assert (counts["total"], counts["skipped"], counts["ok"]) == (2, 1, 1)
    with pytest.raises(ValueError, match="unknown logger"):
        SweepOptions(loggers=("wandb",))


def test_a_record_names_the_processor_it_ran_on():
    from pathlib import Path

    import torch

    from adapt.bench.runner import machine

    info = machine(torch.device("cpu"))
    assert info["cpus"] >= 1 and info["system"]
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        assert info["cpu"] and info["cpu"] in cpuinfo.read_text()
