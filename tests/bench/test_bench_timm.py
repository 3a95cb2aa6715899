"""A suite takes a timm backbone by name through the real adapt-bench entry point (timm's tiny test models)."""

import json

import pytest
from helpers import cli

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
