"""The adapt-bench harness: CLI end to end, resume after SIGKILL, failures, bad suites, reports."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from helpers import BIN, cli
from torch import nn

from adapt import methods
from adapt.bench import load_suite, run_sweep, write_report
from adapt.bench.suite import SuiteError
from adapt.methods import registry

TINY_SUITE = """
name = "tiny"
seeds = {seeds}
eval_every = 20

[train]
steps = {steps}
batch_size = 32
lr = 0.05
log_every = 20

[backbones.mlp]
kind = "mlp"
hidden = [16]
activation = "tanh"

[[tasks]]
benchmark = "moons"
source = "source"
target = "rotated"
backbone = "mlp"

[methods.source_only]

[methods.{second}]
{second_hparams}
"""


def write_suite(tmp_path, seeds=2, steps=40, second="dann", second_hparams="discriminator_hidden = [16]", name="tiny"):
    path = tmp_path / f"{name}.toml"
    path.write_text(TINY_SUITE.format(seeds=seeds, steps=steps, second=second, second_hparams=second_hparams))
    return path


def test_cli_end_to_end(tmp_path):
    suite = write_suite(tmp_path)
    out = tmp_path / "results"
    result = cli("run", "--suite", suite, "--out", out, "--jobs", "2", "--quiet")
    assert result.returncode == 0, result.stderr
    records = list((out / "runs").glob("*.json"))
    assert len(records) == 4
    record = json.loads(records[0].read_text())
    assert record["status"] == "ok" and record["selection"] == "last"
    assert {"config", "versions", "device", "wall_seconds", "accuracy", "per_class_accuracy", "curve"} <= set(record)
    assert record["versions"]["torch"] == torch.__version__
    assert "selection: last checkpoint" in result.stdout and "dann" in result.stdout
    for name in (
        "runs.csv",
        "summary.csv",
        "summary.md",
        "summary.tex",
        "heatmap.png",
        "bars.png",
        "curves.png",
        "gain.png",
    ):
        assert (out / "report" / name).stat().st_size > 0, name
    again = cli("run", "--suite", suite, "--out", out, "--quiet")
    assert again.returncode == 0 and "4 already done, 0 finished now" in again.stdout


def test_cli_help_list_show_and_errors(tmp_path):
    help_text = cli("run", "--help").stdout
    for option in ("--suite", "--methods", "--seeds", "--out", "--jobs", "--device", "--data-root", "--retry-failed"):
        assert option in help_text
    listing = cli("list")
    assert listing.returncode == 0
    assert "trade_off = 1.0" in listing.stdout and "quick:" in listing.stdout and "office31" in listing.stdout
    shown = cli("show", "moons", "source", "rotated", "--out", tmp_path / "moons.png")
    assert shown.returncode == 0 and (tmp_path / "moons.png").exists()
    missing = cli("report", tmp_path / "nothing")
    assert missing.returncode == 2 and "no run records" in missing.stderr and missing.stdout == ""
    unknown = cli("run", "--suite", "nosuch", "--out", tmp_path / "r")
    assert unknown.returncode == 2 and "unknown suite 'nosuch'; available:" in unknown.stderr


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
        "failed_before": 0,
        "stale": 0,
        "stale_summary": "",
    }
    report = write_report(tmp_path / "out", figures=False)
    failed = report.failed
    assert len(failed) == 2 and set(failed["failed_step"]) == {3}
    assert failed["error"].str.contains("loss term 'poison' became non-finite").all()
    assert set(report.summary["method"]) == {"source_only"}


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    """Records of a finished sweep of the tiny suite (copied by the tests that must not touch them)."""
    folder = tmp_path_factory.mktemp("finished")
    run_sweep(load_suite(str(write_suite(folder))), folder / "out", verbose=False)
    return folder / "out"


@pytest.mark.parametrize("mutation, message", [
    (lambda s: "bogus = 1\n" + s, r"tiny.toml: bogus: unknown key; allowed: backbones, budgets, checkpoints, data_root, defaults_tuned, description"),
    (lambda s: s.replace("[methods.dann]", "[methods.danny]"), r"methods.danny: unknown key; allowed: adabn, .*, dann, "),
    (lambda s: s.replace('benchmark = "moons"', 'benchmark = "moon"'), r"tasks\[0\].benchmark: unknown benchmark 'moon'; allowed: blobs-conditional"),
    (lambda s: s.replace('target = "rotated"', 'target = "upside"'), r"tasks\[0\].target: unknown moons domain 'upside'; allowed: rotated, source"),
    (lambda s: s.replace("steps = 40", 'steps = "many"'), r"train.steps: must be a number, got str 'many'"),
    (lambda s: s.replace("seeds = 2", "seeds = 2.5"), r"seeds: must be a positive integer, got float"),
    (lambda s: s.replace("discriminator_hidden = [16]", "discriminator_width = 16"), r"methods.dann.discriminator_width: unknown key; allowed: .*discriminator_hidden"),
    (lambda s: s.replace("lr = 0.05", "learning_rate = 0.05"), r"train.learning_rate: unknown key; allowed: .*lr"),
])  # fmt: skip
def test_bad_suite_files_name_file_key_and_allowed_values(tmp_path, finished_sweep, mutation, message):
    import shutil

    good = write_suite(tmp_path)
    out = tmp_path / "out"
    shutil.copytree(finished_sweep, out)
    before = {p.name: p.read_bytes() for p in (out / "runs").glob("*.json")}
    good.write_text(mutation(good.read_text()))
    result = cli("run", "--suite", good, "--out", out, "--quiet")
    assert result.returncode == 2
    assert str(good) in result.stderr
    import re

    assert re.search(message, result.stderr), result.stderr
    assert {p.name: p.read_bytes() for p in (out / "runs").glob("*.json")} == before


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


def test_report_is_regenerated_identically_from_records(tmp_path):
    suite = load_suite(str(write_suite(tmp_path, seeds=2, steps=20)))
    run_sweep(suite, tmp_path / "out", verbose=False)
    first = write_report(tmp_path / "out", tmp_path / "r1")
    second = write_report(tmp_path / "out", tmp_path / "r2")
    for name in ("runs.csv", "summary.csv", "summary.md", "summary.tex"):
        assert (tmp_path / "r1" / name).read_text() == (tmp_path / "r2" / name).read_text()
    assert first.table.equals(second.table)
    summary = first.summary
    assert list(summary.columns[:4]) == ["task", "method", "selection", "metric"] and (summary["n"] == 2).all()


def test_shipped_suites_are_valid():
    from adapt.bench import available_suites

    suites = available_suites()
    assert {"quick", "digits", "office31", "officehome", "visda", "domainnet"} <= set(suites)
    for name in suites:
        suite = load_suite(name)
        assert suite.tasks and suite.methods
    quick = load_suite("quick")
    assert len(quick.methods) == 6 and quick.seeds == 3
    assert load_suite("office31").tasks[0].backbone == {"kind": "resnet50", "weights": "IMAGENET1K_V1"}
    with pytest.raises(SuiteError, match="unknown suite"):
        load_suite("nope")


def test_report_compares_with_published_numbers(tmp_path):
    path = write_suite(tmp_path, seeds=1, steps=20)
    path.write_text(path.read_text() + '\n[published]\nsource = "a paper"\n"moons/source->rotated" = { dann = 90.0 }\n'
                    'avg = { source_only = 70.0 }\n')  # fmt: skip
    run_sweep(load_suite(str(path)), tmp_path / "out", verbose=False)
    table, caption = write_report(tmp_path / "out", figures=False).published
    assert "a paper" in caption and "target labels" in caption
    row = table.loc[("moons/source->rotated", "dann")]
    assert row["published"] == 90.0 and row["difference"] == round(row["ours"] - 90.0, 1)
    assert table.loc[("avg", "source_only"), "published"] == 70.0
    assert (tmp_path / "out" / "report" / "published.md").exists()
    bad = tmp_path / "bad.toml"
    bad.write_text(path.read_text().replace("dann = 90.0", "danny = 90.0"))
    with pytest.raises(SuiteError, match=r"published.moons/source->rotated.danny: unknown key; allowed: dann"):
        load_suite(str(bad))


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


def test_report_without_seaborn_writes_tables_and_says_how_to_get_figures(
    tmp_path, finished_sweep, monkeypatch, capsys
):
    """The core install leaves seaborn out: the report still writes every table and names the extra."""
    import importlib.util
    import shutil

    out = tmp_path / "out"
    shutil.copytree(finished_sweep, out)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "seaborn" else real_find_spec(name, *a)
    )
    report = write_report(out)
    assert report.figures == [] and (out / "report" / "summary.md").exists()
    assert "pip install 'adapt-uda[bench]'" in capsys.readouterr().err


def test_core_install_leaves_the_harness_extras_out():
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    core = {d.split(">")[0].split("=")[0] for d in project["dependencies"]}
    assert "seaborn" not in core and {"torch", "numpy", "pandas", "scikit-learn"} <= core
    assert any(d.startswith("seaborn") for d in project["optional-dependencies"]["bench"])
    assert any(d.startswith("seaborn") for d in project["optional-dependencies"]["dev"])


def test_cli_version_and_package_metadata():
    from importlib.metadata import metadata

    import adapt

    result = cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"adapt-bench {adapt.__version__}"
    meta = metadata("adapt-uda")
    assert meta["License-Expression"] == "MIT" and meta["Version"] == adapt.__version__
    assert (Path(__file__).resolve().parents[1] / "LICENSE").read_text().startswith("MIT License")


@pytest.mark.parametrize("line, message", [
    ('description = 3', r"description: must be a string, got int 3"),
    ('split = "final"', r"split: unknown split 'final'; allowed: confirmation, tuning"),
    ('metric = "f1"', r"metric: unknown metric 'f1'; allowed: accuracy, mean_class_accuracy"),
    ("source_holdout = 1.5", r"source_holdout: must be a fraction in \[0, 1\), got 1.5"),
    ("checkpoints = -1", r"checkpoints: must be a non-negative integer, got -1"),
    ("defaults_tuned = 1", r"defaults_tuned: must be a boolean, got int 1"),
    ('data_root = ["a"]', r"data_root: must be a string, got list"),
    ('protocol = "offline"', r"protocol: unknown protocol 'offline'; allowed: online, source-free, uda"),
])  # fmt: skip
def test_scalar_suite_keys_are_checked_against_the_suite_fields(tmp_path, line, message):
    """Each scalar key is checked by its ``Suite`` field's type (``description`` had no check before)."""
    path = write_suite(tmp_path)
    path.write_text(line + "\n" + path.read_text())
    with pytest.raises(SuiteError, match=message):
        load_suite(str(path))


def test_a_suite_field_left_out_takes_the_dataclass_default_and_floats_stay_floats(tmp_path):
    from adapt.bench.suite import Suite

    path = write_suite(tmp_path)
    path.write_text("source_holdout = 0\n" + path.read_text().replace("seeds = 2\n", ""))
    suite = load_suite(str(path))
    assert suite.seeds == Suite.__dataclass_fields__["seeds"].default == 3
    # an integer 0 for a float field is 0.0: the run ids of "0" and "0.0" are one setting's
    assert isinstance(suite.source_holdout, float)


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
