"""Bad inputs get one clear line naming the problem and the fix (fit, score, load, suites, records,
image folders, the command line)."""

import os
import pickle
import warnings

import numpy as np
import pytest
import torch
from helpers import cli
from PIL import Image
from torch.utils.data import TensorDataset

from adapt import SourceOnly
from adapt.errors import InputError
from adapt.models import MLP


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 2)).astype(np.float32), rng.integers(0, 2, 60)
    model = SourceOnly(MLP(2, (8,)), num_classes=2)
    model.fit((x, y), x, steps=5, verbose=False)
    return model, x, y


@pytest.mark.parametrize("call, message", [
    (lambda m, x, y: m.score(x, y.astype(str)), r"score labels is a numpy array of strings .*integer class indices"),
    (lambda m, x, y: m.score(x, y[:10]), r"score got 10 labels for 60 inputs"),
    (lambda m, x, y: m.score(x), r"score\(x\) of unlabeled inputs needs their labels"),
    (lambda m, x, y: m.score(TensorDataset(torch.as_tensor(x))), r"needs their labels"),
    (lambda m, x, y: m.score(x, y + 5), r"score labels must lie in \[0, 2\)"),
    (lambda m, x, y: m.fit((x, y.astype(str)), x, steps=2, verbose=False), r"source y is a numpy array of strings"),
    (lambda m, x, y: m.fit((x, y), x.tolist(), steps=2, verbose=False), r"target is a list of 60 lists; pass an array"),
])  # fmt: skip
def test_labels_and_inputs_of_the_wrong_kind_are_named(fitted, call, message):
    model, x, y = fitted
    with pytest.raises(InputError, match=message):
        call(model, x, y)


def test_a_callback_that_is_never_due_is_named(fitted):
    model, x, y = fitted

    class Never:
        every = 0

        def __call__(self, step, model):
            return {}

    with pytest.raises(ValueError, match=r"callback Never must have an integer `every` >= 1.*got 0"):
        model.fit((x, y), x, steps=2, verbose=False, callbacks=[Never()])


def test_a_checkpoint_that_would_run_code_is_refused_without_torchs_advice(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, ("echo unsafe",))

    path = tmp_path / "model.pt"
    torch.save({"format": 1, "payload": Payload()}, path)
    with pytest.raises(InputError, match="holds Python objects that loading would execute") as caught:
        SourceOnly.load(path)
    assert "weights_only=False" not in str(caught.value) and "posix.system" in str(caught.value)
    assert not isinstance(caught.value.__cause__, pickle.UnpicklingError)  # torch's message is not chained


def test_image_folders_name_empty_classes_and_links(tmp_path):
    from adapt.data.images import scan_folder

    root = tmp_path / "domain"
    for name in ("cat", "dog", "empty"):
        (root / name).mkdir(parents=True)
    for name in ("cat", "dog"):
        Image.new("RGB", (4, 4)).save(root / name / "a.png")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    Image.new("RGB", (4, 4)).save(outside / "b.png")
    (root / "dog" / "linked.png").symlink_to(outside / "b.png")
    (root / "cat" / "more").symlink_to(outside, target_is_directory=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        samples, classes = scan_folder(root)
    text = "\n".join(str(w.message) for w in caught)
    assert "class folder(s) without images: empty" in text
    assert "linked folder(s) not followed" in text and "cat/more" in text
    assert "point outside the folder" in text and "dog/linked.png" in text
    assert classes == ["cat", "dog", "empty"] and len(samples) == 3


def test_bad_suite_files_and_records_are_named(tmp_path):
    from adapt.bench.records import RecordWarning, read_records
    from adapt.bench.suite import SuiteError, load_suite

    latin = tmp_path / "latin.toml"
    latin.write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(SuiteError, match=r"latin.toml: not UTF-8 text .*save it as UTF-8"):
        load_suite(str(latin))
    twice = tmp_path / "twice.toml"
    task = '[[tasks]]\nbenchmark = "moons"\nsource = "source"\ntarget = "rotated"\nbackbone = "mlp"\n'
    twice.write_text('[backbones.mlp]\nkind = "mlp"\n' + task + task + "[methods.source_only]\n")
    with pytest.raises(SuiteError, match=r"tasks\[1\]: the same task as tasks\[0\] \(moons/source->rotated\)"):
        load_suite(str(twice))
    (tmp_path / "out" / "runs").mkdir(parents=True)
    (tmp_path / "out" / "runs" / "empty.json").write_text('{"id": "x", "config": {}, "status": "ok"}')
    with pytest.warns(RecordWarning, match="its config names no method"):
        assert read_records(tmp_path / "out") == []


def test_an_empty_out_folder_is_refused(tmp_path):
    result = cli("run", "--suite", "quick", "--out", "", "--quiet")
    assert result.returncode == 2 and "--out is empty" in result.stderr


def test_a_results_folder_that_cannot_be_written_is_named_before_any_run(tmp_path, monkeypatch):
    from adapt.bench import runner
    from adapt.bench.suite import load_suite

    monkeypatch.setattr(runner.os, "access", lambda path, mode: not str(path).endswith("runs"))
    with pytest.raises(ValueError, match=r"runs is not writable; the sweep writes its records there"):
        runner.run_sweep(load_suite("quick"), tmp_path / "out", verbose=False)
    assert not list((tmp_path / "out").rglob("*.json"))
