"""The README's library example runs as written, and adapting pays off in it: DANN beats SourceOnly trained
with the same settings, computed here."""

import re
import subprocess
import sys

import pytest
from helpers import ROOT
from torch import nn

import adapt
from adapt import SourceOnly

README = ROOT / "README.md"
#: How far the example's label-free estimate may be from its true target accuracy (the README's comment).
ESTIMATE_ERROR = 0.05


def test_library_example_runs_and_beats_source_only(tmp_path, monkeypatch, capsys):
    section = README.read_text().split("## Use it as a library", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert (tmp_path / "dann.pt").exists()
    printed = capsys.readouterr().out
    accuracy = float(re.search(r"target accuracy (\S+)", printed).group(1))
    estimate = namespace["estimate"]
    assert f"estimated {estimate.accuracy:.3f}" in printed and estimate.low <= estimate.accuracy <= estimate.high
    assert abs(estimate.accuracy - accuracy) < ESTIMATE_ERROR  # what the README says of it
    assert (namespace["same"].predict(namespace["xt"]) == namespace["y_hat"]).all()
    adapt.seed_everything(0)  # the baseline: the example's settings, without adaptation
    baseline = SourceOnly(nn.Sequential(nn.Linear(2, 64), nn.Tanh()), 2)
    xs, ys, xt, yt = (namespace[k] for k in ("xs", "ys", "xt", "yt"))
    baseline.fit((xs, ys), xt, steps=3000, lr=0.05, batch_size=64, seed=0, device="cpu", verbose=False)
    assert accuracy > baseline.score(xt, yt) + 0.05


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
