"""The documentation's runnable examples run (the site itself is built with --strict in .ci/run)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.py"))


def run(path: Path) -> str:
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_every_example_is_included_in_a_page():
    pages = "".join(p.read_text() for p in (ROOT / "docs").glob("*.md"))
    for example in EXAMPLES:
        assert f'--8<-- "docs/examples/{example.name}"' in pages, example.name


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs(example):
    out = run(example)
    accuracies = [float(v) for v in re.findall(r"target accuracy (\d\.\d+)", out)]
    assert accuracies, out
    if example.stem in ("quickstart", "custom_method", "sklearn_search"):
        assert all(a > 0.6 for a in accuracies), out  # above chance (0.5) on the two moons
    named = dict(re.findall(r"^(.+): target accuracy (\d\.\d+)$", out, re.M))
    if example.stem == "custom_method":
        before, after = map(float, re.search(r"mean gap ([\d.]+) -> ([\d.]+)", out).groups())
        assert after < before  # the new method's adaptation loss falls
    if example.stem == "source_free":  # adapted without a single source example
        source, shot, tent = (float(named[k]) for k in ("source model", "SHOT", "TENT online"))
        assert shot > source + 0.1 and tent > source + 0.05, out
        tent_sorted, lame_sorted = (float(named[f"{k} online, label-sorted"]) for k in ("TENT", "LAME"))
        assert lame_sorted > tent_sorted, out  # the reference benchmark's direction on label-sorted streams
    if example.stem == "few_labels":  # 5 labels per class: the source model is worth it
        source, finetuned, mme, alone = (float(named[k]) for k in ("source only", "FineTune", "MME", "TargetOnly"))
        assert finetuned > source and finetuned > alone + 0.05 and mme > alone, out
