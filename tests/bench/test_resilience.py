"""Sweeps that survive bad records, dying parents, SIGTERM, interrupted downloads and bad suite
values, with one clear line instead of a traceback for what a user can fix."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import BIN, cli

from adapt import SourceOnly
from adapt.bench import load_suite, read_records, run_sweep, write_report
from adapt.bench.identity import RUN_THREADS
from adapt.bench.records import RecordWarning
from adapt.bench.suite import SuiteError
from adapt.data import DownloadError, download_verified, sources
from adapt.data.download import check_unpacked, fetch
from adapt.models import MLP

SUITE = """
name = "tiny"
seeds = {seeds}
[train]
steps = {steps}
batch_size = 16
lr = 0.1
[backbones.mlp]
kind = "mlp"
hidden = [8]
[[tasks]]
benchmark = "moons"
source = "source"
target = "rotated"
backbone = "mlp"
[methods.source_only]
[methods.coral]
"""


def suite_file(tmp_path: Path, seeds: int = 1, steps: int = 20, text: str | None = None) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(text if text is not None else SUITE.format(seeds=seeds, steps=steps))
    return path


# ------------------------------------------------------------------ records
def test_a_garbage_truncated_or_copied_record_never_blocks_a_sweep(tmp_path):
    suite = load_suite(str(suite_file(tmp_path)))
    out = tmp_path / "out"
    run_sweep(suite, out, verbose=False)
    records = sorted((out / "runs").glob("*.json"))
    assert len(records) == 2
    shutil.copy(records[0], out / "runs" / "copy-of-a-record.json")  # same id twice
    records[1].write_text(records[1].read_text()[:40])  # truncated by a full disk
    (out / "runs" / "notes.json").write_text("[1, 2]")  # valid JSON, not a record
    with pytest.warns(RecordWarning) as caught:
        report = write_report(out, figures=False)
    messages = " | ".join(str(w.message) for w in caught)
    assert "copy-of-a-record.json: a second record of run" in messages
    assert f"{records[1].name}: not a readable JSON record" in messages and "notes.json: not a run record" in messages
    assert report.summary["n"].max() == 1  # the copy is not counted twice
    with pytest.warns(RecordWarning, match="moved to runs/rejected/; its run will be redone"):
        counts = run_sweep(suite, out, verbose=False)
    assert counts["ok"] == 1 and counts["skipped"] == 1  # the truncated record's run was redone
    assert sorted(p.name for p in (out / "runs" / "rejected").iterdir()) == sorted(
        ["copy-of-a-record.json", records[1].name, "notes.json"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_records(out)) == 2


@pytest.mark.bad_input
def test_cli_names_a_bad_record_in_one_warning_line(tmp_path):
    suite = suite_file(tmp_path)
    out = tmp_path / "out"
    assert cli("run", "--suite", suite, "--out", out, "--quiet", "--no-report").returncode == 0
    (out / "runs" / "broken.json").write_text("{")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    result = subprocess.run([str(BIN), "report", str(out), "--no-figures"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert f"adapt-bench: warning: {out / 'runs' / 'broken.json'}: not a readable JSON record" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_run_uses_the_fixed_thread_count_whatever_the_jobs_or_the_threads_before(tmp_path):
    """The thread count is the run's, not the machine's: in process or in workers, with 3 threads set
    before the sweep, each run uses RUN_THREADS, and the numbers are the same."""
    suite = load_suite(str(suite_file(tmp_path, seeds=2)))
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        run_sweep(suite, tmp_path / "alone", verbose=False)
        assert torch.get_num_threads() == 3  # given back after the sweep
    finally:
        torch.set_num_threads(before)
    run_sweep(suite, tmp_path / "workers", verbose=False, jobs=2)
    alone, workers = ({r["id"]: r for r in read_records(tmp_path / name)} for name in ("alone", "workers"))
    assert len(alone) == 4 and alone.keys() == workers.keys()
    assert {r["threads"] for r in [*alone.values(), *workers.values()]} == {RUN_THREADS}
    assert {k: r["accuracy"] for k, r in alone.items()} == {k: r["accuracy"] for k, r in workers.items()}


def test_a_record_made_with_another_thread_count_is_stale_and_reruns(tmp_path):
    suite = load_suite(str(suite_file(tmp_path)))
    out = tmp_path / "out"
    run_sweep(suite, out, verbose=False)
    path = sorted((out / "runs").glob("*.json"))[0]
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "threads": RUN_THREADS + 1}))
    counts = run_sweep(suite, out, verbose=False)
    assert counts["ok"] == 1 and counts["skipped"] == 1
    assert json.loads((out / "runs" / "stale" / path.name).read_text())["threads"] == RUN_THREADS + 1  # kept aside
    assert json.loads(path.read_text())["threads"] == RUN_THREADS


# ------------------------------------------------------------------ process lifecycle
def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _cmdline(pid: int) -> str:
    """The process's command line, or '' when it has already exited (a short-lived helper)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


def _start_parallel_sweep(tmp_path: Path) -> tuple[subprocess.Popen, list[int], Path]:
    out = tmp_path / "out"
    suite = suite_file(tmp_path, seeds=6, steps=3000)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([str(BIN), "run", "--suite", str(suite), "--out", str(out), "--jobs", "2", "--quiet",
                             "--no-report"], env=env, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 120
    workers: list[int] = []
    while time.time() < deadline:
        workers = [p for p in _children(proc.pid) if "spawn" in _cmdline(p)]
        if len(workers) >= 2:
            break
        time.sleep(0.2)
    assert len(workers) >= 2, "the workers did not start"
    return proc, workers, out


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").exists(), reason="reads /proc")
def test_workers_die_with_a_killed_parent(tmp_path):
    proc, workers, _ = _start_parallel_sweep(tmp_path)
    proc.kill()
    proc.wait()
    deadline = time.time() + 15
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers), "orphaned workers kept running"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").exists(), reason="reads /proc")
def test_sigterm_is_handled_like_ctrl_c(tmp_path):
    proc, workers, out = _start_parallel_sweep(tmp_path)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert "terminated (SIGTERM); finished runs are saved, rerun the same command to resume" in stderr
    assert "Traceback" not in stderr
    deadline = time.time() + 15
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers)
    for record in (out / "runs").glob("*.json"):  # whatever finished is whole
        assert json.loads(record.read_text())["status"] == "ok"


# ------------------------------------------------------------------ downloads and unpacked data
@pytest.fixture
def office_archive(tmp_path):
    from PIL import Image

    from adapt.data.catalog.office31 import CLASSES

    staged = tmp_path / "staged"
    for domain in ("amazon", "webcam"):
        for c in CLASSES[:2]:
            (staged / "office31" / domain / "images" / c).mkdir(parents=True)
            Image.new("RGB", (8, 8)).save(staged / "office31" / domain / "images" / c / "a.jpg")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with tarfile.open(mirror / "office31.tar.gz", "w:gz") as archive:
        archive.add(staged / "office31", arcname="office31")
    import hashlib

    md5 = hashlib.md5((mirror / "office31.tar.gz").read_bytes()).hexdigest()
    return mirror, md5


def test_an_interrupted_extraction_leaves_nothing_where_loaders_look(tmp_path, office_archive, monkeypatch):
    from adapt import data
    from adapt.data import download

    mirror, md5 = office_archive
    monkeypatch.setitem(
        sources.SOURCES, "office31", sources.Source("https://x.invalid", "office31.tar.gz", md5, "office31")
    )
    monkeypatch.setenv("ADAPT_DATA_MIRROR", mirror.as_uri())
    monkeypatch.setenv("ADAPT_ALLOW_FILE_MIRROR", "1")
    root = tmp_path / "data"
    real_extract = download.extract

    def extract_then_die(archive, into):
        real_extract(archive, into)
        shutil.rmtree(Path(into) / "office31" / "webcam")  # half of it unpacked when the process dies
        raise KeyboardInterrupt

    monkeypatch.setattr(download, "extract", extract_then_die)
    with pytest.raises(KeyboardInterrupt):
        data.task("office31", "amazon", "webcam", root=root, download=True)
    assert not (root / "office31").exists() and list(root.glob(".office31.partial-*")) == []
    monkeypatch.setattr(download, "extract", real_extract)
    task = data.task("office31", "amazon", "webcam", root=root, download=True)
    assert len(task.source_train) == 2 and (root / "office31" / ".adapt-complete-office31.json").exists()
    shutil.rmtree(root / "office31" / "amazon")  # damaged after the download
    with pytest.raises(download.UnverifiedDataError, match=r"office31 is incomplete: amazon missing since it was downloaded; "
                       r"delete .* and download again \(--download\)"):  # fmt: skip
        check_unpacked("office31", root)


@pytest.mark.bad_input
def test_a_folder_not_known_to_be_complete_is_refused_until_marked(tmp_path, office_archive):
    from adapt import data
    from adapt.data.download import UnverifiedDataError

    mirror, _ = office_archive
    with tarfile.open(mirror / "office31.tar.gz") as archive:
        archive.extractall(tmp_path / "data", filter="data")  # by hand: no marker
    with pytest.raises(UnverifiedDataError, match=r"office31 has no completion marker: it may be a partial copy\. If you "
                       r"arranged it by hand and it is complete, run: adapt-bench mark-data office31 --data-root"):  # fmt: skip
        data.task("office31", "amazon", "webcam", root=tmp_path / "data")
    marked = cli("mark-data", "office31", "--data-root", tmp_path / "data")
    assert marked.returncode == 0 and ".adapt-complete-office31.json" in marked.stdout
    assert len(data.task("office31", "amazon", "webcam", root=tmp_path / "data").source_train) == 2
    wrong = cli("mark-data", "visda2017-train", "--data-root", tmp_path / "data")
    assert wrong.returncode == 2 and "unknown download 'visda2017-train'" in wrong.stderr


def test_a_download_merges_into_a_folder_and_keeps_what_the_archive_lacks(tmp_path, office_archive, monkeypatch):
    from adapt import data

    mirror, md5 = office_archive
    monkeypatch.setitem(
        sources.SOURCES, "office31", sources.Source("https://x.invalid", "office31.tar.gz", md5, "office31")
    )
    monkeypatch.setenv("ADAPT_DATA_MIRROR", mirror.as_uri())
    monkeypatch.setenv("ADAPT_ALLOW_FILE_MIRROR", "1")
    root = tmp_path / "data"
    mine = root / "office31" / "amazon" / "images" / "back_pack" / "my_notes.txt"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"user data")  # an unmarked folder with something the archive does not have
    task = data.task("office31", "amazon", "webcam", root=root, download=True)  # refetched: it was unmarked
    assert mine.read_bytes() == b"user data" and (root / "office31" / ".adapt-complete-office31.json").exists()
    assert len(task.source_train) >= 2


def test_mirrors_must_be_https_and_downloads_need_a_checksum(tmp_path, office_archive, monkeypatch):
    mirror, md5 = office_archive
    monkeypatch.setitem(
        sources.SOURCES, "office31", sources.Source("https://x.invalid", "office31.tar.gz", md5, "office31")
    )
    monkeypatch.delenv("ADAPT_ALLOW_FILE_MIRROR", raising=False)
    for url in ("http://mirror.example/data", mirror.as_uri()):
        monkeypatch.setenv("ADAPT_DATA_MIRROR", url)
        with pytest.raises(DownloadError, match=r"only https:// mirrors are used \(set ADAPT_ALLOW_FILE_MIRROR=1"):
            fetch("office31", tmp_path / "data", "layout")
    with pytest.raises(DownloadError, match="without a checksum"):
        download_verified((mirror / "office31.tar.gz").as_uri(), tmp_path / "x.tar.gz")


# ------------------------------------------------------------------ values checked before anything runs
@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace("[methods.coral]", '[methods.coral]\ntrade_off = "high"'), r"methods\.coral\.trade_off: must be a number, got str 'high'"),
    (lambda s: s.replace("[methods.source_only]", "[methods.dann]\ngrl_schedule = \"fast\"\n[methods.source_only]"), r"methods\.dann: grl_schedule must be one of"),
    (lambda s: s.replace("seeds = 1", "seeds = 0"), r"seeds: must be a positive integer, got 0"),
    (lambda s: s.replace("seeds = 1", "seeds = 1\neval_every = -5"), r"eval_every: must be a non-negative integer, got -5"),
    (lambda s: s.replace("seeds = 1", "seeds = 1\nsearch_draws = 0"), r"search_draws: must be a positive integer, got 0"),
    (lambda s: s.replace('backbone = "mlp"', 'backbone = "mlp"\ndata = { angel = 30 }'), r"tasks\[0\]\.data\.angel: unknown key; allowed: angle"),
    (lambda s: s.replace("hidden = [8]", 'hidden = "wide"'), r"backbones\.mlp: bad option"),
])  # fmt: skip
@pytest.mark.bad_input
def test_suite_values_are_checked_before_the_first_run(tmp_path, edit, message):
    path = suite_file(tmp_path, text=edit(SUITE.format(seeds=1, steps=20)))
    with pytest.raises(SuiteError, match=message) as caught:
        load_suite(str(path))
    assert str(path) in str(caught.value)


def test_fit_options_name_themselves_and_numpy_integers_are_numbers():
    x, y = torch.randn(20, 2), torch.arange(20) % 2
    model = SourceOnly(MLP(2, (4,)), np.int64(2))
    assert model.num_classes == 2 and type(model.num_classes) is int
    with pytest.raises(TypeError, match=r"steps must be an integer, got float 2\.5"):
        model.fit((x, y), x, steps=2.5)
    with pytest.raises(TypeError, match=r"lr must be a number, got str '0\.1'"):
        model.fit((x, y), x, steps=2, lr="0.1")
    model.fit((x, y), x, steps=np.int64(2), batch_size=np.int32(4), lr=np.float32(0.1), verbose=False)


# ------------------------------------------------------------------ the CLI: one line, no traceback
@pytest.mark.parametrize("device, message", [
    ("gpu", "--device 'gpu' is not a device; use auto, cpu, cuda or cuda:N"),
    pytest.param("cuda", "--device cuda: no CUDA GPU is visible here",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")),
])  # fmt: skip
@pytest.mark.bad_input
def test_bad_device_is_one_line_before_any_run(tmp_path, device, message):
    result = cli("run", "--suite", suite_file(tmp_path), "--out", tmp_path / "out", "--device", device)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_ray_on_cuda_needs_reserved_gpus(tmp_path):
    result = cli("run", "--suite", suite_file(tmp_path), "--out", tmp_path / "out", "--executor", "ray",
                 "--device", "cuda")  # fmt: skip
    assert result.returncode == 2 and "needs --gpus-per-run" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.bad_input
def test_out_that_is_a_file_and_a_full_disk_are_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "results").write_text("not a folder")
    result = cli("run", "--suite", suite_file(tmp_path), "--out", tmp_path / "results")
    assert result.returncode == 2 and "is a file; give a folder for the results" in result.stderr
    from adapt.bench import cli as cli_module
    from adapt.bench import records

    def disk_full(path, record):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(records.os, "fsync", lambda fd: disk_full("runs/x.json", None))
    code = cli_module.main(["run", "--suite", str(suite_file(tmp_path)), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "No space left on device" in err and "Traceback" not in err
    assert list((tmp_path / "out" / "runs").glob(".*.tmp")) == []  # no partial record left behind


def test_report_files_are_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    out = tmp_path / "out"
    run_sweep(load_suite(str(suite_file(tmp_path))), out, verbose=False)
    write_report(out, figures=False)
    before = {p.name: p.read_bytes() for p in (out / "report").iterdir()}
    from adapt.bench import report as report_module

    def crash(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(report_module, "write_transfer", crash)
    with pytest.raises(OSError):
        write_report(out, figures=False)
    assert {p.name: p.read_bytes() for p in (out / "report").iterdir()} == before
