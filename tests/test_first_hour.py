"""What a new user meets in the first hour: a reproducible README, unlabeled targets, numpy in and
numpy out, named errors on load, a CLI that starts fast and says what to do when data is missing,
and report files in one unit."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import cli
from torch import nn

from adapt import DANN, InputError, SourceOnly
from adapt.bench import load_suite, run_sweep, write_report
from adapt.bench.runner import _should_run, expand, write_record
from adapt.data import custom_task, moons_shift
from adapt.models import MLP, ConvNet

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


# ------------------------------------------------------------------ the README example
@pytest.mark.slow
def test_readme_example_gives_the_same_numbers_in_fresh_processes(tmp_path):
    section = README.read_text().split("## Use it as a library", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    script = tmp_path / "example.py"
    script.write_text(code + "\nprint(same.predict_proba(xt)[:5].tolist())\n")
    outputs = []
    for run in ("first", "second"):
        folder = tmp_path / run
        folder.mkdir()
        done = subprocess.run([sys.executable, str(script)], cwd=folder, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert "target accuracy" in outputs[0]
    assert outputs[0] == outputs[1]


# ------------------------------------------------------------------ unlabeled targets, numpy in / numpy out
@pytest.mark.parametrize("target", ["array", "tensor", "pair_with_none", "dataset_of_inputs"])
def test_custom_task_accepts_an_unlabeled_target(target):
    xs, ys, xt, _ = moons_shift()
    given = {
        "array": xt,
        "tensor": torch.as_tensor(xt),
        "pair_with_none": (xt, None),
        "dataset_of_inputs": [torch.as_tensor(x, dtype=torch.float32) for x in xt],
    }[target]
    if target == "dataset_of_inputs":
        rows = given

        class Inputs(torch.utils.data.Dataset):
            def __len__(self):
                return len(rows)

            def __getitem__(self, i):
                return rows[i]  # x alone, no label

        given = Inputs()
    task = custom_task((xs, ys), given)
    assert task.target_test is None and len(task.target_train) == len(xt) and task.classes == ["0", "1"]
    assert "unlabeled" in repr(task)
    model = SourceOnly(MLP(2, (8,)), 2)
    model.fit(task.source_train, task.target_train, steps=5, verbose=False)
    assert model.predict(task.target_train).shape == (len(xt),)


def test_custom_task_names_what_is_wrong():
    xs, ys, xt, _ = moons_shift()
    with pytest.raises(InputError, match="source must be labeled"):
        custom_task(xs, xt)
    with pytest.raises(InputError, match=r"target: pass a class-folder path.*inputs x alone.*got dict"):
        custom_task((xs, ys), {"x": xt})
    with pytest.raises(InputError, match=r"source labels must be 300 integers.*shape \(5,\)"):
        custom_task((xs, ys[:5]), xt)
    with pytest.raises(ValueError, match="unlabeled target supports only the transductive protocol"):
        custom_task((xs, ys), xt, protocol="inductive")


@pytest.fixture(scope="module")
def fitted():
    xs, ys, xt, _ = moons_shift()
    torch.manual_seed(0)
    model = DANN(MLP(2, (16,), activation=nn.Tanh), 2)
    model.fit((xs, ys), xt, steps=30, verbose=False)
    return model, xt


def test_numpy_in_numpy_out_tensor_in_tensor_out(fitted):
    model, xt = fitted
    for method, shape in (("predict", (300,)), ("predict_proba", (300, 2)), ("predict_logits", (300, 2)),
                          ("features", (300, 16))):  # fmt: skip
        from_numpy = getattr(model, method)(xt)
        from_tensor = getattr(model, method)(torch.as_tensor(xt))
        assert isinstance(from_numpy, np.ndarray) and from_numpy.shape == shape, method
        assert isinstance(from_tensor, torch.Tensor) and tuple(from_tensor.shape) == shape, method
        np.testing.assert_allclose(from_numpy, from_tensor.numpy(), rtol=1e-6)
    assert model.predict(xt).dtype == np.int64
    assert isinstance(model.predict(torch.utils.data.TensorDataset(torch.as_tensor(xt))), torch.Tensor)


def test_predict_names_a_feature_mismatch(fitted):
    model, _ = fitted
    with pytest.raises(InputError, match=r"inputs of shape \(N, 5\) but DANN was fitted on inputs of shape \(N, 2\)"):
        model.predict(np.zeros((3, 5), dtype=np.float32))


# ------------------------------------------------------------------ save / load
@pytest.mark.parametrize("backbone", [lambda: MLP(2, (16,), activation=nn.Tanh), lambda: ConvNet(1, (4,), 8, 8)])
def test_standard_backbones_are_rebuilt_by_load(tmp_path, backbone):
    net = backbone()
    shape = (2,) if isinstance(net, MLP) else (1, 8, 8)
    x = torch.randn(40, *shape)
    y = torch.arange(40) % 2
    model = SourceOnly(net, 2)
    model.fit((x, y), x, steps=3, batch_size=8, verbose=False)
    model.save(tmp_path / "m.pt")
    loaded = SourceOnly.load(tmp_path / "m.pt")  # no backbone passed
    assert type(loaded.backbone) is type(net)
    torch.testing.assert_close(loaded.predict_logits(x), model.predict_logits(x))


def test_load_names_a_missing_or_wrong_backbone(tmp_path, fitted):
    model, xt = fitted
    model.save(tmp_path / "mlp.pt")
    with pytest.raises(InputError, match=r"does not fit the backbone passed \(MLP\(in_features=2, hidden=\[32\].*"
                       r"saved with MLP\(in_features=2, hidden=\[16\].*backbone\.net\.1\.weight has shape \(16, 2\) "
                       r"in the file but \(32, 2\)"):  # fmt: skip
        DANN.load(tmp_path / "mlp.pt", backbone=MLP(2, (32,), activation=nn.Tanh))
    with pytest.raises(InputError, match=r"does not fit the backbone passed \(Sequential.*missing from the file"):
        DANN.load(tmp_path / "mlp.pt", backbone=nn.Sequential(nn.Linear(2, 16), nn.Tanh()))
    custom = SourceOnly(nn.Sequential(nn.Linear(2, 4), nn.ReLU()), 2)
    custom.fit((xt, (xt[:, 0] > 0).astype(int)), xt, steps=2, verbose=False)
    custom.save(tmp_path / "custom.pt")
    with pytest.raises(InputError, match=r"trained on a Sequential of your own.*SourceOnly.load\(.*backbone=\.\.\.\)"):
        SourceOnly.load(tmp_path / "custom.pt")
    same = SourceOnly.load(tmp_path / "custom.pt", backbone=nn.Sequential(nn.Linear(2, 4), nn.ReLU()))
    np.testing.assert_array_equal(same.predict(xt), custom.predict(xt))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"junk\.pt' is not an adapt checkpoint"):
        SourceOnly.load(tmp_path / "junk.pt")


# ------------------------------------------------------------------ the command line
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


TINY = """
name = "tiny"
seeds = 1
[train]
steps = 40
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
[methods.{second}]
"""


def _tiny_suite(tmp_path: Path, second: str = "coral") -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(second=second))
    return path


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


# ------------------------------------------------------------------ report files: one unit, honest labels
def test_report_files_give_accuracy_in_percent_and_na_for_undefined(tmp_path):
    suite = load_suite(str(_tiny_suite(tmp_path)))
    suite.validators, suite.select_by, suite.eval_every = ["entropy", "im"], "entropy", 4
    out = tmp_path / "out"
    run_sweep(suite, out, verbose=False)
    report = write_report(out, figures=False)
    runs = pd.read_csv(out / "report" / "runs.csv")
    summary = pd.read_csv(out / "report" / "summary.csv")
    assert runs["accuracy"].between(1, 100).all()  # percent, like summary.csv
    merged = runs.groupby("method")["accuracy"].mean()
    np.testing.assert_allclose(merged.sort_index(), summary.set_index("method")["mean"].sort_index(), rtol=1e-6)
    transfer = pd.read_csv(out / "report" / "transfer.csv")
    assert "negative_transfer_pct" in transfer.columns
    table = (out / "report" / "validators.md").read_text()
    cells = [c.strip() for line in table.splitlines()[4:] for c in line.strip("|").split("|")[1:]]
    assert any(re.fullmatch(r"-?\d\.\d{3}", c) for c in cells), cells
    assert all(c == "n/a" or re.fullmatch(r"-?\d\.\d{3}", c) for c in cells), cells
    assert "below 0 = prefers the worse checkpoints" in report.quality_caption


def test_an_mlp_with_an_activation_a_file_cannot_name_needs_its_backbone_passed(tmp_path):
    import functools

    x, y = torch.randn(20, 2), torch.arange(20) % 2
    net = MLP(2, (4,), activation=functools.partial(nn.LeakyReLU, 0.2))
    model = SourceOnly(net, 2)
    model.fit((x, y), x, steps=2, batch_size=8, verbose=False)
    model.save(tmp_path / "m.pt")  # saving works for any backbone
    with pytest.raises(InputError, match="trained on a MLP of your own"):
        SourceOnly.load(tmp_path / "m.pt")
    same = SourceOnly.load(tmp_path / "m.pt", backbone=MLP(2, (4,), activation=functools.partial(nn.LeakyReLU, 0.2)))
    torch.testing.assert_close(same.predict_logits(x), model.predict_logits(x))


def test_show_draws_an_unlabeled_target(tmp_path):
    pytest.importorskip("seaborn")
    from adapt.data import show

    xs, ys, xt, _ = moons_shift()
    assert show(custom_task((xs, ys), xt), tmp_path / "moons.png").stat().st_size > 0


def test_lazy_packages_still_give_their_submodules():
    import adapt
    import adapt.bench

    assert adapt.bench.runner.run_sweep is adapt.bench.run_sweep and adapt.registry.Registry
    with pytest.raises(AttributeError, match="has no attribute 'nothing_here'"):
        adapt.bench.nothing_here  # noqa: B018
