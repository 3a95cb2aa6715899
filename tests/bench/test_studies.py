"""The transfer studies (``adapt-bench study``) and semi-supervised suites (``target_labels``), through the
real entry point on tiny settings; and the tables' arithmetic on hand-made numbers."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from helpers import cli, write_officehome_tree

from adapt.bench.studies import labels_needed, time_to_accuracy

TINY = ["--tasks", "moons:source:rotated", "--backbone", "mlp", "--seeds", "2", "--quiet"]


def test_data_efficiency_study_runs_resumes_and_keeps_its_settings(tmp_path):
    out = tmp_path / "labels"
    args = ["study", "data-efficiency", "--out", out, *TINY, "--steps", "30", "--finetune-steps", "15",
            "--shots", "0,2,all"]  # fmt: skip
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    assert "Target labels needed to reach TargetOnly-with-all-labels - 2 points" in done.stdout
    runs = pd.read_csv(out / "runs.csv")
    # 4 approaches x 3 shots x 2 seeds, less TargetOnly without labels
    assert len(runs) == 4 * 3 * 2 - 2 and set(runs.approach) == {"target_only", "finetune", "dann+finetune", "mme"}
    assert set(runs[runs.shots == "2"]["labels"]) == {4}  # 2 per class, 2 classes
    assert set(runs[runs.shots == "0"]["labels"]) == {0}
    assert (runs[runs.shots == "all"]["labels"] == 210).all()  # the inductive split's 70% of 300
    assert {"data_efficiency.png", "summary.csv", "labels_needed.csv"} <= {p.name for p in out.iterdir()}
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    again = cli(*args)  # a rerun finds every record and trains nothing
    assert again.returncode == 0 and stamps == {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    assert pd.read_csv(out / "runs.csv").equals(runs)
    other = cli(*args[:-2], "--shots", "0,1")
    assert other.returncode == 2 and "holds a study with other settings" in other.stderr


def test_training_time_study_excludes_its_probes_from_the_clock(tmp_path):
    out = tmp_path / "time"
    done = cli("study", "training-time", "--out", out, *TINY, "--steps", "50", "--finetune-steps", "50")
    assert done.returncode == 0, done.stderr
    curves = pd.read_csv(out / "curves.csv")
    assert set(curves.start) == {"scratch", "source"} and sorted(set(curves.step)) == [25, 50]
    for _, curve in curves.groupby(["start", "seed"]):
        assert curve.seconds.is_monotonic_increasing and (curve.seconds > 0).all()
    table = pd.read_csv(out / "time_to_accuracy.csv")
    assert list(table.start) == ["scratch", "source"]
    assert (out / "training_time.png").exists()


def test_training_time_curve_leaves_out_the_probes_own_time(tmp_path, monkeypatch):
    """A probe that takes half a second must not appear in the curve's training seconds."""
    import time

    from adapt.bench import studies

    original = studies.AccuracyProbe.__call__

    def slow(self, step, model):
        start = time.perf_counter()
        original(self, step, model)
        time.sleep(0.5)
        self.probe_seconds[-1] = time.perf_counter() - start

    monkeypatch.setattr(studies.AccuracyProbe, "__call__", slow)
    settings = studies.StudySettings(tasks=["moons:source:rotated"], seeds=1, steps=50, finetune_steps=50,
                                     backbone={"kind": "mlp"}, eval_every=25, device="cpu")  # fmt: skip
    study = studies.Study("training-time", tmp_path, settings, verbose=False)
    curve = studies._training_time_run(study, "moons:source:rotated", "scratch", 0)["curve"]
    assert [p["step"] for p in curve] == [25, 50]
    assert 0 < curve[1]["seconds"] - curve[0]["seconds"] < 0.4  # 25 steps of a tiny MLP, not the probe's 0.5 s


def test_labels_needed_on_hand_made_means():
    rows = [("target_only", "1", 2, 40.0), ("target_only", "5", 10, 70.0), ("target_only", "all", 200, 80.0),
            ("finetune", "0", 0, 60.0), ("finetune", "1", 2, 78.5), ("finetune", "5", 10, 79.0),
            ("mme", "1", 2, 50.0), ("mme", "all", 200, 77.0)]  # fmt: skip
    summary = pd.DataFrame([{"task": "t", "approach": a, "shots": s, "labels": n, "mean": m} for a, s, n, m in rows])
    table = labels_needed(summary).set_index("approach")
    assert table.loc["finetune", "labels needed"] == 2 and table.loc["finetune", "labels saved vs TargetOnly"] == 198
    assert table.loc["target_only", "labels needed"] == 200 and table.loc["target_only", "goal (%)"] == 78.0
    assert pd.isna(table.loc["mme", "labels needed"]) and pd.isna(table.loc["mme", "labels saved vs TargetOnly"])


def test_time_to_accuracy_on_hand_made_curves():
    points = [("scratch", 10, 1.0, 50.0), ("scratch", 20, 2.0, 80.0), ("scratch", 30, 3.0, 90.0),
              ("source", 10, 0.5, 89.0), ("source", 20, 1.0, 91.0), ("source", 30, 1.5, 92.0)]  # fmt: skip
    curves = pd.DataFrame([{"task": "t", "start": s, "seed": 0, "step": st, "seconds": sec, "accuracy": a,
                            "source_seconds": 4.0 if s == "source" else 0.0} for s, st, sec, a in points])  # fmt: skip
    table = time_to_accuracy(curves).set_index("start")
    assert table.loc["scratch", "steps to goal"] == 30 and table.loc["scratch", "seconds to goal"] == 3.0
    assert table.loc["source", "steps to goal"] == 10 and table.loc["source", "seconds to goal"] == 0.5
    assert table.loc["source", "seconds incl. source training"] == 4.5


SSDA_SUITE = """
name = "ssda"
seeds = 1
target_labels = {labels}
[train]
steps = 40
batch_size = 32
[backbones.m]
kind = "mlp"
hidden = [16]
[[tasks]]
benchmark = "moons"
source = "source"
target = "rotated"
backbone = "m"
[methods.dann]
[methods.mme]
"""


def test_a_suite_with_target_labels_trains_on_them_and_scores_without_them(tmp_path):
    suite = tmp_path / "ssda.toml"
    suite.write_text(SSDA_SUITE.format(labels=3))
    done = cli("run", "--suite", suite, "--out", tmp_path / "out", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "3 per class labeled target examples used for training and kept out of scoring" in done.stdout
    records = [json.loads(p.read_text()) for p in (tmp_path / "out" / "runs").glob("*.json")]
    assert {r["config"]["method"] for r in records} == {"dann", "mme"}
    for record in records:
        assert record["config"]["target_labels"] == 3 and record["target_labeled_examples"] == 6
        assert "target_classification" in record["curve"][-1]


@pytest.mark.parametrize("labels, message", [("0", "must be labeled examples per class"),
                                             ('"saito-2"', "target_labels"), ("true", "must be labeled")])  # fmt: skip
@pytest.mark.bad_input
def test_bad_target_labels_in_a_suite_are_named(tmp_path, labels, message):
    suite = tmp_path / "ssda.toml"
    suite.write_text(SSDA_SUITE.format(labels=labels))
    done = cli("run", "--suite", suite, "--out", tmp_path / "out", "--quiet")
    assert done.returncode == 2 and message in done.stderr and "target_labels" in done.stderr


def test_data_efficiency_study_on_image_files(tmp_path):
    """A benchmark read from image files (a small Office-Home-style tree): the labeled examples go
    through the training transforms, and the study runs end to end."""
    write_officehome_tree(tmp_path / "data", ("Art", "Real_World"), size=32, per_class=5)
    done = cli("study", "data-efficiency", "--out", tmp_path / "out", "--tasks", "officehome:Art:Real_World",
               "--data-root", tmp_path / "data", "--seeds", "1", "--steps", "2", "--finetune-steps", "2",
               "--shots", "0,1", "--quiet", "--no-figures")  # fmt: skip
    assert done.returncode == 0, done.stderr
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert len(runs) == 7 and set(runs[runs.shots.astype(str) == "1"]["labels"]) == {2}


@pytest.mark.bad_input
def test_a_study_task_that_cannot_load_is_named_and_claims_no_folder(tmp_path):
    done = cli("study", "training-time", "--out", tmp_path / "t", "--tasks", "moons:source:sideways", "--quiet")
    assert done.returncode == 2 and "unknown moons target domain 'sideways'" in done.stderr
    assert not (tmp_path / "t").exists()
    done = cli("study", "training-time", "--out", tmp_path / "t", "--tasks", "moons:source", "--quiet")
    assert done.returncode == 2 and "a study task is 'benchmark:source:target'" in done.stderr
