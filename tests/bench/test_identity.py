"""Run identity is what runs: resolved defaults and revisions in the id, stale records found, explained
and rerun (exactly the affected runs), or kept and marked; source models keyed the same way."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from adapt.bench import load_suite, run_sweep
from adapt.bench.identity import LEGACY, RUN_THREADS, differences, resolve, stale_reasons
from adapt.bench.report import write_report
from adapt.bench.runner import expand
from adapt.methods import DAN, DANN

SUITE = """
name = "identity"
seeds = 1
[train]
steps = 20
batch_size = 32
lr = 0.05
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
[methods.dan]
"""


@pytest.fixture
def suite(tmp_path):
    path = tmp_path / "identity.toml"
    path.write_text(SUITE)
    return load_suite(str(path))


def records(out: Path) -> dict[str, dict]:
    return {r["config"]["method"]: r for r in (json.loads(p.read_text()) for p in (out / "runs").glob("*.json"))}


def with_default(monkeypatch, cls, name, value):
    """Change one of a method's defaults, as an edit of its ``__init__`` would."""
    defaults = cls.hyperparameter_defaults()
    monkeypatch.setattr(cls, "hyperparameter_defaults", classmethod(lambda c: {**defaults, name: value}))


def test_the_run_id_hashes_the_resolved_configuration(suite):
    dann = next(r for r in expand(suite) if r.method == "dann")
    config = dann.resolved()
    assert dann.config()["hparams"] == {}  # the suite sets nothing ...
    assert config["hparams"]["discriminator_dropout"] == 0.5 and config["train"]["momentum"] == 0.9  # ... this runs
    assert config["backbone"] == {"kind": "mlp", "hidden": [16], "activation": "relu"}
    assert config["data"]["angle"] == 35.0 and config["revisions"]["methods"] == {"dann": 1}
    assert resolve(dann.config()) == config


def test_a_default_change_reruns_exactly_the_affected_runs(suite, tmp_path, monkeypatch):
    out = tmp_path / "out"
    first = run_sweep(suite, out, verbose=False)
    assert (first["ok"], first["stale"]) == (3, 0)
    before = records(out)
    with_default(monkeypatch, DANN, "discriminator_dropout", 0.0)
    again = run_sweep(suite, out, verbose=False)
    assert (again["ok"], again["skipped"], again["stale"]) == (1, 2, 1)
    assert "1 stale: dann: hparams.discriminator_dropout 0.5 -> 0.0 (1)" in again["stale_summary"]
    after = records(out)
    assert after["dann"]["config"]["hparams"]["discriminator_dropout"] == 0.0
    assert after["dann"]["id"] != before["dann"]["id"] and after["dann"]["spec_id"] == before["dann"]["spec_id"]
    for method in ("source_only", "dan"):  # untouched: same record, not rerun
        assert after[method] == before[method]
    (kept,) = (out / "runs" / "stale").glob("*.json")  # the old record is kept, not deleted
    assert json.loads(kept.read_text())["id"] == before["dann"]["id"]
    assert run_sweep(suite, out, verbose=False)["ok"] == 0  # nothing left to do


def test_a_revision_bump_reruns_only_that_methods_runs(suite, tmp_path, monkeypatch):
    out = tmp_path / "out"
    run_sweep(suite, out, verbose=False)
    monkeypatch.setattr(DAN, "revision", DAN.revision + 1)
    again = run_sweep(suite, out, verbose=False)
    assert (again["ok"], again["stale"]) == (1, 1) and "dan: revisions.methods.dan 1 -> 2" in again["stale_summary"]


def test_kept_stale_records_are_reported_and_marked(suite, tmp_path, monkeypatch):
    out = tmp_path / "out"
    run_sweep(suite, out, verbose=False)
    with_default(monkeypatch, DANN, "trade_off", 0.5)
    kept = run_sweep(suite, out, verbose=False, keep_stale=True)
    assert (kept["ok"], kept["stale"]) == (0, 1)
    report = write_report(out, figures=False)
    runs = pd.read_csv(out / "report" / "runs.csv")
    assert runs.set_index("method")["stale"].to_dict() == {"dan": False, "dann": True, "source_only": False}
    assert "1 stale run" in report.caption and "dann" in report.caption


def test_a_record_from_before_0_2_is_stale_and_rerun(suite, tmp_path):
    """Records of adapt 0.1 have no spec; their id was their spec's id."""
    out = tmp_path / "out"
    run_sweep(suite, out, verbose=False)
    path = next(p for p in (out / "runs").glob("*.json") if json.loads(p.read_text())["config"]["method"] == "dan")
    old = json.loads(path.read_text())
    legacy = {k: v for k, v in old.items() if k not in ("spec", "spec_id")} | {"id": old["spec_id"],
                                                                                "config": old["spec"]}  # fmt: skip
    path.unlink()
    (out / "runs" / f"{old['spec_id']}.json").write_text(json.dumps(legacy))
    assert stale_reasons(legacy) == [LEGACY]
    again = run_sweep(suite, out, verbose=False)
    assert (again["ok"], again["stale"]) == (1, 1) and "adapt < 0.2.0" in again["stale_summary"]
    assert records(out)["dan"]["id"] == old["id"]  # redone under its resolved id, to the same result
    assert records(out)["dan"]["accuracy"] == old["accuracy"]


def test_differences_name_every_changed_leaf():
    old = {"hparams": {"a": 1, "b": [1, 2]}, "train": {"lr": 0.1}}
    new = {"hparams": {"a": 2, "b": [1, 2], "c": None}, "train": {"lr": 0.1}}
    assert differences(old, new) == ["hparams.a 1 -> 2", "hparams.c 'absent' -> None"]
    assert differences(new, new) == []


def test_a_record_of_a_method_that_is_gone_is_stale(suite):
    spec = next(r for r in expand(suite) if r.method == "dan")
    record = {"id": spec.run_id, "spec": {**spec.config(), "method": "gone"}, "config": spec.resolved()}
    (reason,) = stale_reasons(record)
    assert reason.startswith("its configuration no longer resolves") and "gone" in reason


def test_a_record_made_with_another_thread_count_says_so(suite):
    spec = next(r for r in expand(suite) if r.method == "dan")
    record = {"id": spec.run_id, "spec": spec.config(), "config": spec.resolved(), "threads": RUN_THREADS}
    assert stale_reasons(record) == []
    assert stale_reasons({**record, "threads": 2}) == [f"threads 2 -> {RUN_THREADS}"]
