"""Mid-run checkpoints: a run killed part-way resumes from its last checkpoint and ends with exactly
the weights, history and selected checkpoint of a run that was never interrupted (CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from adapt import ATDOC, DANN, DIRTT, InputError, SourceOnly
from adapt.bench import read_records
from adapt.data import moons_shift
from adapt.models import MLP

BIN = Path(sys.executable).parent / "adapt-bench"


class Killed(Exception):
    """Stands in for SIGKILL inside a test process."""


class KillAt:
    """A callback that stops training after ``step`` steps (it draws no random numbers)."""

    def __init__(self, step: int) -> None:
        self.every = step

    def __call__(self, step: int, model) -> None:
        raise Killed(step)


class Inputs(torch.utils.data.Dataset):
    """Not a TensorDataset: batches go through adapt's own DataLoader and its resumable sampler."""

    def __init__(self, x, y=None) -> None:
        self.x, self.y = torch.as_tensor(x, dtype=torch.float32), None if y is None else torch.as_tensor(y)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return (self.x[i], self.y[i]) if self.y is not None else self.x[i]


HPARAMS = {
    DANN: {"discriminator_hidden": [16]},
    # refinement from step 21, the teacher renewed at 21, 31, 41...: the resumed run (from step 30) must renew at 31
    DIRTT: {"discriminator_hidden": [16], "vada_fraction": 0.3, "teacher_every": 10},
}


def _model(cls=DANN):
    torch.manual_seed(0)
    return cls(MLP(2, (16,), activation=nn.Tanh), 2, **HPARAMS.get(cls, {}))


def _fit(model, source, target, **options):
    return model.fit(source, target, steps=70, batch_size=32, lr=0.05, seed=3, verbose=False, log_every=10, **options)


def _same(a, b, history_a, history_b) -> None:
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name
    columns = [c for c in history_a.columns if c != "seconds"]
    assert history_a[columns].equals(history_b[columns])


# ATDOC: its memory of the target (buffers keyed by dataset position) must resume too; DIRT-T its teacher
@pytest.mark.parametrize("cls", [DANN, ATDOC, DIRTT])
@pytest.mark.parametrize("data", ["in_memory", "dataset"])
def test_a_killed_fit_resumes_to_the_same_weights(tmp_path, data, cls):
    xs, ys, xt, _ = moons_shift()
    source, target = ((xs, ys), xt) if data == "in_memory" else (Inputs(xs, ys), Inputs(xt))
    plain = _model(cls)
    history = _fit(plain, source, target)
    path = tmp_path / "run.pt"
    killed = _model(cls)
    with pytest.raises(Killed):  # mid-epoch: 300 examples, batches of 32
        _fit(killed, source, target, checkpoint_path=path, checkpoint_every=15, callbacks=[KillAt(40)])
    assert path.exists()
    resumed = _model(cls)  # a fresh process would build a fresh model too
    resumed_history = _fit(resumed, source, target, checkpoint_path=path, checkpoint_every=15)
    assert resumed_history.attrs["resumed_from_step"] == 30
    _same(plain, resumed, history, resumed_history)
    assert not path.exists()  # finished: the checkpoint is gone


def test_checkpoint_selection_survives_a_resume(tmp_path):
    xs, ys, xt, _ = moons_shift()
    plain = _model(SourceOnly)
    history = _fit(plain, (xs, ys), xt, select_by="entropy", select_every=10)
    path = tmp_path / "run.pt"
    with pytest.raises(Killed):
        _fit(_model(SourceOnly), (xs, ys), xt, select_by="entropy", select_every=10, checkpoint_path=path,
             checkpoint_every=20, callbacks=[KillAt(50)])  # fmt: skip
    resumed = _model(SourceOnly)
    resumed_history = _fit(resumed, (xs, ys), xt, select_by="entropy", select_every=10, checkpoint_path=path,
                           checkpoint_every=20)  # fmt: skip
    assert resumed.selected_step_ == plain.selected_step_
    _same(plain, resumed, history, resumed_history)


class FirstStep:
    """A callback with state: the first step it saw (restored from the checkpoint on resume)."""

    def __init__(self) -> None:
        self.every, self.first = 10, None

    def __call__(self, step: int, model) -> dict[str, float]:
        self.first = self.first or step
        return {"first": np.float32(self.first)}  # a numpy number: the checkpoint must still load

    def state_dict(self) -> dict:
        return {"first": self.first}

    def load_state_dict(self, state: dict) -> None:
        self.first = state["first"]


def test_callback_state_is_found_by_its_class_when_the_list_changes(tmp_path):
    xs, ys, xt, _ = moons_shift()
    path = tmp_path / "run.pt"
    with pytest.raises(Killed):  # the killed run had one more callback in front
        _fit(_model(), (xs, ys), xt, checkpoint_path=path, checkpoint_every=20, callbacks=[KillAt(50), FirstStep()])
    resumed = FirstStep()
    history = _fit(_model(), (xs, ys), xt, checkpoint_path=path, checkpoint_every=20, callbacks=[resumed])
    assert history.attrs["resumed_from_step"] == 40
    assert resumed.first == 10 and set(history["first"].dropna()) == {10.0}


@pytest.mark.bad_input
def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    xs, ys, xt, _ = moons_shift()
    path = tmp_path / "run.pt"
    with pytest.raises(Killed):
        _fit(_model(), (xs, ys), xt, checkpoint_path=path, checkpoint_every=10, callbacks=[KillAt(20)])
    with pytest.raises(InputError, match=r"belongs to another run \(differs in lr\); delete it"):
        _model().fit((xs, ys), xt, steps=70, batch_size=32, lr=0.01, seed=3, verbose=False, checkpoint_path=path)
    path.write_bytes(b"garbage")
    with pytest.raises(InputError, match="cannot be read"):
        _fit(_model(), (xs, ys), xt, checkpoint_path=path)


SUITE = """
name = "resume"
seeds = 1
[train]
steps = 4000
batch_size = 32
lr = 0.05
log_every = 100
[backbones.mlp]
kind = "mlp"
hidden = [32]
[[tasks]]
benchmark = "moons"
source = "source"
target = "rotated"
backbone = "mlp"
[methods.dann]
"""


@pytest.mark.slow
def test_a_sigkilled_sweep_resumes_runs_from_their_checkpoints(tmp_path):
    suite_path = tmp_path / "resume.toml"
    suite_path.write_text(SUITE)
    # one thread in every process: the thread count changes results in the last digits
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    reference = tmp_path / "reference"
    plain = [str(BIN), "run", "--suite", str(suite_path), "--out", str(reference), "--quiet", "--no-report",
             "--checkpoint-seconds", "0"]  # fmt: skip
    assert subprocess.run(plain, env=env, capture_output=True).returncode == 0
    out = tmp_path / "killed"
    command = [str(BIN), "run", "--suite", str(suite_path), "--out", str(out), "--quiet", "--no-report",
               "--checkpoint-every", "500"]  # fmt: skip
    proc = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / "checkpoints").glob("*.pt")):
        time.sleep(0.05)
    assert list((out / "checkpoints").glob("*.pt")), "no checkpoint was written"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not list((out / "runs").glob("*.json"))  # killed before the run finished
    assert subprocess.run(command, env=env, capture_output=True).returncode == 0
    [record] = read_records(out)
    [expected] = read_records(reference)
    assert record["resumed_from_step"] >= 500
    assert record["accuracy"] == expected["accuracy"]
    assert np.allclose([r["total"] for r in record["curve"]], [r["total"] for r in expected["curve"]], rtol=0, atol=0)
    assert not list((out / "checkpoints").glob("*.pt"))
    assert json.loads(json.dumps(record["curve"]))  # still plain JSON
