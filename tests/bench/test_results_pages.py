"""The measured tables of README.md and docs/results are what the committed run summaries give, and the
committed runs are what the library runs now (a default or a revision changed since: rerun them)."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from helpers import ROOT

from adapt.bench import load_suite
from adapt.bench.identity import RUN_THREADS
from adapt.bench.results import DATA, PAGE_LIST, STUDIES, check_pages, fill_blocks, provenance_line
from adapt.bench.runner import expand
from adapt.bench.studies import Study, StudySettings

SWEEPS = [p.name for p in PAGE_LIST if p.name not in STUDIES]


def test_every_page_has_its_committed_summary():
    for page in PAGE_LIST:
        assert (ROOT / DATA / f"{page.name}.runs.csv").exists(), page.name


def test_committed_pages_are_what_the_summaries_give():
    assert check_pages(ROOT) == []


@pytest.mark.parametrize("name", SWEEPS)
def test_committed_runs_are_what_the_library_runs_now(name):
    runs = pd.read_csv(ROOT / DATA / f"{name}.runs.csv")
    current = {spec.run_id for spec in expand(load_suite(name))}
    assert set(runs["id"]) == current, f"{name}: the summary's runs are not the suite's current runs; rerun it"
    assert not runs["stale"].any()
    assert not runs["dirty"].any() and runs["commit"].notna().all()  # made from committed code
    assert (runs["threads"] == RUN_THREADS).all(), f"{name}: made with other thread counts; rerun it"


@pytest.mark.parametrize("name", STUDIES)
def test_committed_study_runs_are_what_the_library_runs_now(name, tmp_path):
    runs = pd.read_csv(ROOT / DATA / f"{name}.runs.csv")
    saved = json.loads((ROOT / DATA / f"{name}.study.json").read_text())
    study = Study(name, tmp_path, StudySettings(**{k: v for k, v in saved.items() if k != "study"}), check=False)
    column = "approach" if name == "data-efficiency" else "start"
    for approach, config_id in runs.groupby(column)["config_id"].unique().items():
        assert list(config_id) == [study.config_id(approach)], f"{name}: {approach} is stale; rerun the study"


def test_a_changed_summary_is_caught(tmp_path):
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    path = tmp_path / DATA / "quick.runs.csv"
    runs = pd.read_csv(path)
    runs.loc[runs.index[0], ["accuracy", "score"]] -= 20  # one run's result edited
    runs.to_csv(path, index=False)
    problems = check_pages(tmp_path)
    assert any(p.startswith("docs/results/quick.md") for p in problems)
    assert any(p.startswith("README.md") for p in problems)


def test_readme_blocks_are_filled_and_other_text_left_alone():
    text = "intro\n<!-- results:quick -->\nold table\n<!-- /results -->\nrest\n<!-- results:other -->\nx\n<!-- /results -->\n"
    filled = fill_blocks(text, {"quick": "new table\n"})
    assert filled == text.replace("old table\n", "new table\n")


def test_pages_say_what_made_their_runs():
    runs = pd.DataFrame({"version": ["0.2.0"] * 2, "torch": ["2.14.1"] * 2, "commit": ["a079a6bc9110"] * 2,
                         "dirty": [False, False], "started": ["2026-12-03T13:12:32+0000", "2026-12-04T01:00:00+0000"],
                         "system": ["Linux"] * 2, "machine": ["x86_64"] * 2, "cpus": [2, 2], "device": ["cpu"] * 2,
                         "threads": [1, 2]})  # fmt: skip
    line = provenance_line(runs)
    assert line.startswith("Runs made by adapt 0.2.0 (commit a079a6b), torch 2.14.1, on 2026-12-03 to 2026-12-04")
    assert "Linux x86_64, 2 CPUs, device cpu, 1, 2 thread(s) per run" in line


def test_export_update_replaces_only_the_rerun_runs(tmp_path):
    """``results export --update``: rows of runs that were rerun are replaced, the others kept, rows the
    suite no longer runs dropped, and a record that is not a current run of the suite refused."""
    from adapt.bench.results import _updated

    data = tmp_path / DATA
    data.mkdir(parents=True)
    committed = pd.read_csv(ROOT / DATA / "quick.runs.csv")
    gone = committed.iloc[[0]].assign(id="0000000000000000")  # a run of an older default
    pd.concat([committed, gone]).to_csv(data / "quick.runs.csv", index=False)
    points = pd.read_csv(ROOT / DATA / "quick.checkpoints.csv")
    points.to_csv(data / "quick.checkpoints.csv", index=False)
    rerun = committed[committed["method"] == "coral"].assign(accuracy=1.0)
    rerun_points = points[points["id"].isin(rerun["id"])].assign(target_accuracy=1.0)
    runs, checkpoints = _updated("quick", data, rerun, rerun_points)
    assert sorted(runs["id"]) == sorted(committed["id"])  # the old default's row dropped, none lost
    assert (runs.set_index("id").loc[rerun["id"], "accuracy"] == 1.0).all()
    others = committed[committed["method"] != "coral"].set_index("id")["accuracy"]
    assert runs.set_index("id").loc[others.index, "accuracy"].equals(others)
    assert len(checkpoints) == len(points) and set(checkpoints["id"]) == set(points["id"])
    assert (checkpoints[checkpoints["id"].isin(rerun["id"])]["target_accuracy"] == 1.0).all()
    with pytest.raises(ValueError, match=r"1 record.*not runs of the suite quick as it stands"):
        _updated("quick", data, pd.concat([rerun, gone]), rerun_points)


def test_export_leaves_out_records_the_suite_no_longer_runs(tmp_path, capsys):
    """A results folder kept across edits of a suite's file holds records of runs the suite no longer has
    (another method setting, a failed attempt): exporting a shipped suite writes only its current runs."""
    import json

    from adapt.bench import load_suite
    from adapt.bench.results import export
    from adapt.bench.runner import expand

    spec = expand(load_suite("corruptions-online"))[0]
    current = {"id": spec.run_id, "config": spec.resolved(), "status": "ok", "accuracy": 0.5, "metric": "accuracy"}
    orphan = {**current, "id": "0000000000000000", "status": "failed", "accuracy": None, "error": "InputError: old"}
    (tmp_path / "runs").mkdir()
    for record in (current, orphan):
        (tmp_path / "runs" / f"{record['id']}.json").write_text(json.dumps(record))
    written = export(tmp_path, "corruptions-online", root=tmp_path)
    runs = pd.read_csv(written[0])
    assert runs["id"].tolist() == [spec.run_id]
    assert "left out 1 record(s)" in capsys.readouterr().err
