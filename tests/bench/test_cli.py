"""The adapt-bench command line end to end: help, version, list, show, run, missing data and progress output."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile

import pandas as pd
import pytest
import torch
from helpers import ROOT, _tiny_suite, cli, write_suite

from adapt.bench import load_suite, run_sweep
from adapt.bench.runner import _should_run, expand, write_record


def test_help_and_version_do_not_import_torch():
    """Structure, not timing (benchmarks/bench_cli_startup.py measures): no heavy import to print help.
    (``adapt-bench list`` reads the registries, so it imports torch.)"""
    probe = (
        "import sys, contextlib, io\n"
        "from adapt.bench.cli import main\n"
        "for argv in (['--help'], ['--version'], ['run', '--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try: main(argv)\n"
        "        except SystemExit: pass\n"
        "print(sorted(m for m in ('torch', 'pandas', 'seaborn', 'matplotlib') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


OFFICE_SUITE = """
name = "office-tiny"
seeds = 1
[train]
steps = 2
batch_size = 2
[backbones.small]
kind = "convnet"
[[tasks]]
benchmark = "office31"
source = "amazon"
target = "webcam"
backbone = "small"
[methods.source_only]
"""


@pytest.mark.bad_input
def test_missing_data_stops_before_the_first_run_with_one_line(tmp_path):
    suite = tmp_path / "office.toml"
    suite.write_text(OFFICE_SUITE)
    result = cli("run", "--suite", suite, "--out", tmp_path / "out", "--data-root", tmp_path / "nodata")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needed in ("office31", str((tmp_path / "nodata").resolve()), "--data-root", "--download"):
        assert needed in lines[0], needed
    assert not list((tmp_path / "out").glob("runs/*.json"))


def test_run_download_fetches_before_training(tmp_path, monkeypatch):
    """``run --download`` goes through the verified download (a local mirror stands in for the network)."""
    from PIL import Image

    from adapt.bench.cli import main
    from adapt.data import sources
    from adapt.data.catalog.office31 import CLASSES

    staged = tmp_path / "staged"
    for domain in ("amazon", "webcam"):
        for c in CLASSES[:2]:
            folder = staged / "office31" / domain / "images" / c
            folder.mkdir(parents=True)
            Image.new("RGB", (8, 8), (40, 80, 120)).save(folder / "a.jpg")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with tarfile.open(mirror / "office31.tar.gz", "w:gz") as archive:
        archive.add(staged / "office31", arcname="office31")
    import hashlib

    md5 = hashlib.md5((mirror / "office31.tar.gz").read_bytes()).hexdigest()
    monkeypatch.setitem(
        sources.SOURCES, "office31", sources.Source("https://x.invalid/o", "office31.tar.gz", md5, "office31")
    )
    monkeypatch.setenv("ADAPT_DATA_MIRROR", mirror.as_uri())
    monkeypatch.setenv("ADAPT_ALLOW_FILE_MIRROR", "1")
    from adapt.bench import runner

    monkeypatch.setattr(runner, "_results", lambda *args, **kwargs: iter(()))  # fetch, then train nothing
    suite = tmp_path / "office.toml"
    suite.write_text(OFFICE_SUITE)
    root = tmp_path / "data"
    assert main(["run", "--suite", str(suite), "--out", str(tmp_path / "out"), "--data-root", str(root), "--download",
                 "--no-report"]) == 0  # fmt: skip
    assert (root / "office31" / "webcam" / "images" / CLASSES[0] / "a.jpg").exists()


def test_runs_that_failed_for_missing_data_are_retried_by_themselves(tmp_path):
    suite = load_suite(str(_tiny_suite(tmp_path)))
    out = tmp_path / "out"
    spec = expand(suite)[0]
    write_record(out / "runs" / f"{spec.run_id}.json", {"id": spec.run_id, "config": spec.config(), "status": "failed",
                 "error": "DatasetNotFoundError: office31 domain 'amazon' not found", "failure": "missing_data"})  # fmt: skip
    counts = run_sweep(suite, out, verbose=False)
    assert counts["ok"] == counts["total"] == 2 and counts["skipped"] == 0
    assert _should_run({"status": "failed", "failure": "error"}, retry_failed=False) is False
    assert _should_run({"status": "failed", "error": "DownloadError: x"}, retry_failed=False) is True  # older records
    assert _should_run({"status": "ok"}, retry_failed=True) is False


def test_redirected_output_gets_plain_progress_lines_and_failures_point_to_retry(tmp_path):
    out = tmp_path / "out"
    suite = _tiny_suite(tmp_path)
    first = cli("run", "--suite", suite, "--out", out, "--no-report")  # stdout and stderr are pipes
    assert first.returncode == 0, first.stderr
    assert re.search(r"\[1/2\] source_only \| moons/source->rotated \| seed 0: ok \(\d+ s elapsed\)", first.stdout)
    assert "\r" not in first.stderr  # no progress bar redrawn into a log file
    # a run that failed earlier: the summary says so, points to --retry-failed and the exit code is 1
    record = next((out / "runs").glob("*.json"))
    data = json.loads(record.read_text())
    data.update(status="failed", error="RuntimeError: boom\nsecond line", failure="error")
    record.write_text(json.dumps(data))
    again = cli("run", "--suite", suite, "--out", out)
    assert again.returncode == 1
    assert "1 run(s) failed in an earlier sweep and were not retried; rerun with --retry-failed" in again.stdout
    assert "RuntimeError: boom" in again.stdout and "second line" not in again.stdout


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


def test_cli_version_and_package_metadata():
    from importlib.metadata import metadata

    import adapt

    result = cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"adapt-bench {adapt.__version__}"
    meta = metadata("adapt-uda")
    assert meta["License-Expression"] == "MIT" and meta["Version"] == adapt.__version__
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_a_suite_runs_one_method_twice_as_variants_and_reports_both(tmp_path):
    """``[methods."<label>"] method = ...; train = {...}``: the same method with other training options beside
    it in one sweep and one report (issue 30: CDAN+MCC with and without SDAT in one table)."""
    suite = write_suite(tmp_path, seeds=1)
    suite.write_text(suite.read_text() + '\n[methods."dann (SGD lr 0.01)"]\nmethod = "dann"\n'
                     'discriminator_hidden = [16]\ntrain = { lr = 0.01 }\n')  # fmt: skip
    out = tmp_path / "results"
    result = cli("run", "--suite", suite, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    records = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
    by_name = {r["config"].get("variant", r["config"]["method"]): r for r in records}
    assert set(by_name) == {"source_only", "dann", "dann (SGD lr 0.01)"}
    assert by_name["dann (SGD lr 0.01)"]["config"]["method"] == "dann"
    variant, plain = by_name["dann (SGD lr 0.01)"], by_name["dann"]
    assert variant["config"]["train"]["lr"] == 0.01 and plain["config"]["train"]["lr"] == 0.05
    assert variant["accuracy"] != plain["accuracy"]
    runs = pd.read_csv(out / "report" / "runs.csv")
    assert set(runs["method"]) == {"source_only", "dann", "dann (SGD lr 0.01)"}
    assert "dann (SGD lr 0.01)" in result.stdout
