"""A suite takes a timm backbone by name through the real adapt-bench entry point (timm's tiny test models)."""

import json

import pytest
from helpers import cli, write_officehome_tree

from adapt.bench import load_suite
from adapt.bench.suite import SuiteError

pytest.importorskip("timm")

SUITE = """
name = "timm-tiny"
seeds = 1

[train]
steps = 20
batch_size = 32

[backbones.vit]
kind = "timm"
name = "test_vit"
img_size = 16

[backbones.cnn]
kind = "timm"
name = "test_resnet"
{extra}

[[tasks]]
benchmark = "optdigits"
source = "optdigits"
target = "optdigits-m"
backbone = "vit"

[[tasks]]
benchmark = "optdigits"
source = "optdigits"
target = "optdigits-m"
backbone = "cnn"

[methods.source_only]
[methods.dann]
discriminator_hidden = [16]
"""


def test_a_suite_runs_timm_backbones_by_name(tmp_path):
    suite, out = tmp_path / "timm.toml", tmp_path / "results"
    suite.write_text(SUITE.format(extra=""))
    result = cli("run", "--suite", suite, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    runs = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
    assert len(runs) == 4 and {r["status"] for r in runs} == {"ok"}
    names = {r["config"]["backbone"]["name"] for r in runs}
    assert names == {"test_vit", "test_resnet"}
    # the resolved backbone names every option, defaults included (what the run's identity hashes)
    assert {"pretrained", "checkpoint", "layer_decay", "img_size"} <= set(runs[0]["config"]["backbone"])


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('name = "vit_nonexistent_999"', "name must be a timm model name"),
        ("layer_decay = 2.0", r"layer_decay must be in \(0, 1\]"),
        ("depth = 3", "depth: unknown key; allowed: checkpoint, drop_path_rate"),
    ],
)
def test_bad_timm_backbones_are_refused_before_anything_runs(tmp_path, extra, message):
    suite = tmp_path / "timm.toml"
    text = SUITE.format(extra=extra)
    if extra.startswith("name"):
        text = text.replace('name = "test_resnet"\n', "")
    suite.write_text(text)
    with pytest.raises(SuiteError, match=message):
        load_suite(str(suite))


def _run_shrunk_vit_suite(text, tmp_path, name, steps, batch_size):
    """A shipped ViT-B/16 suite's text with timm's test ViT at 224 px in its place, 2 steps of batch 4, run through
    the real entry point on ``tmp_path / "data"``: the CLI's result and the records by method."""
    text = text.replace('name = "vit_base_patch16_224.augreg_in21k_ft_in1k"\npretrained = true',
                        'name = "test_vit"\nimg_size = 224')  # fmt: skip
    text = text.replace(f"steps = {steps}", "steps = 2").replace(f"batch_size = {batch_size}", "batch_size = 4")
    text = text.replace("eval_every = 1000", "eval_every = 1").replace("num_workers = 4", "num_workers = 0")
    suite, out = tmp_path / f"{name}.toml", tmp_path / "results"
    suite.write_text(text)
    result = cli("run", "--suite", suite, "--out", out, "--data-root", tmp_path / "data", "--quiet")
    assert result.returncode == 0, result.stderr
    return result, {
        r["config"]["method"]: r for r in (json.loads(p.read_text()) for p in (out / "runs").glob("*.json"))
    }


def test_the_officehome_vit_sdat_suite_runs_shrunk(tmp_path):
    """The shipped ``officehome-vit-sdat`` suite on a tiny Office-Home-style tree, one task, two steps, timm's test
    ViT in place of ViT-B/16: SDAT (``sam_rho``) and MIC reach the runs' records."""
    from adapt.bench.suite import available_suites

    write_officehome_tree(tmp_path / "data", ("Art", "Clipart"), size=40, per_class=3)
    text = available_suites()["officehome-vit-sdat"].read_text()
    first_task_end = text.index("[[tasks]]", text.index("[[tasks]]") + 1)
    text = text[:first_task_end] + text[text.index("[methods.source_only]") :]  # the first task only
    _, runs = _run_shrunk_vit_suite(text, tmp_path, "officehome-vit-sdat", steps=30000, batch_size=24)
    assert set(runs) == {"source_only", "cdan+mcc", "cdan+mcc+mic"} and {r["status"] for r in runs.values()} == {"ok"}
    assert all(r["config"]["train"]["sam_rho"] == 0.02 for r in runs.values())
    assert runs["cdan+mcc+mic"]["config"]["hparams"]["regularizers"] == {"mcc": 1.0, "mic": 1.0}


def test_the_image_shifts_vit_suite_runs_shrunk_with_sdat_as_a_variant(tmp_path):
    """The shipped ``image-shifts-vit`` suite, one task, four steps: a 16-token ViT (``patch_size``), and CDAN+MCC
    with and without SDAT in one sweep (the variant runs ``cdan+mcc`` with ``sam_rho``; the plain one without)."""
    from adapt.bench.backbones import build_backbone
    from adapt.bench.suite import available_suites

    vit = build_backbone({"kind": "timm", "name": "test_vit", "img_size": 16, "patch_size": 4}, (3, 16, 16))
    assert vit.net.patch_embed.num_patches == 16
    text = available_suites()["image-shifts-vit"].read_text()
    second_task = text.index("[[tasks]]", text.index("[[tasks]]") + 1)
    text = text[:second_task] + text[text.index("[methods.source_only]") :]
    text = text.replace("steps = 1000", "steps = 4").replace("seeds = 2", "seeds = 1")
    suite, out = tmp_path / "image-shifts-vit.toml", tmp_path / "results"
    suite.write_text(text)
    result = cli("run", "--suite", suite, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    runs = {r["config"].get("variant", r["config"]["method"]): r
            for r in (json.loads(p.read_text()) for p in (out / "runs").glob("*.json"))}  # fmt: skip
    assert set(runs) == {"source_only", "cdan+mcc", "cdan+mcc+mic", "cdan+mcc (SDAT)"}
    assert {r["status"] for r in runs.values()} == {"ok"}
    assert runs["cdan+mcc (SDAT)"]["config"]["method"] == "cdan+mcc"
    assert runs["cdan+mcc (SDAT)"]["config"]["train"]["sam_rho"] == 0.02
    assert "sam_rho" not in runs["cdan+mcc"]["config"]["train"]  # omitted at its default 0 (no SAM)
    assert runs["cdan+mcc"]["config"]["backbone"]["patch_size"] == 4


def test_the_visda_vit_sdat_suite_runs_shrunk(tmp_path):
    """The shipped ``visda-vit-sdat`` suite on a tiny VisDA-style tree, two steps, timm's test ViT in place of
    ViT-B/16: SDAT and MIC reach the records, runs are scored by the mean class accuracy, and the report prints
    the authors' published numbers beside ours."""
    import numpy as np
    from PIL import Image

    from adapt.bench.suite import available_suites

    rng = np.random.default_rng(0)
    for split in ("train", "validation"):
        base, lines = tmp_path / "data" / "visda2017" / split, []
        for label, name in enumerate(["aeroplane", "bicycle"]):
            for k in range(3):
                (base / name).mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(base / name / f"{k}.jpg")
                lines.append(f"{name}/{k}.jpg {label}")
        (base / "image_list.txt").write_text("\n".join(lines))
    text = available_suites()["visda-vit-sdat"].read_text()
    result, runs = _run_shrunk_vit_suite(text, tmp_path, "visda-vit-sdat", steps=15000, batch_size=32)
    assert set(runs) == {"source_only", "cdan+mcc", "cdan+mcc+mic"} and {r["status"] for r in runs.values()} == {"ok"}
    assert all(r["config"]["train"]["sam_rho"] == 0.02 and r["metric"] == "mean_class_accuracy" for r in runs.values())
    assert "89.8" in result.stdout and "92.8" in result.stdout
