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

from adapt import DANN, SourceOnly, losses
from adapt.data import task
from adapt.errors import InputError
from adapt.models import MLP, ConvNet

pytestmark = pytest.mark.bad_input


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
    before = model.predict_logits(x)
    with pytest.raises(InputError, match=message):
        call(model, x, y)
    np.testing.assert_array_equal(model.predict_logits(x), before)  # a refused fit leaves the model as it was


def _fresh():
    return SourceOnly(MLP(2, (8,)), num_classes=2)


FIT = {"steps": 2, "batch_size": 8, "verbose": False}


@pytest.mark.parametrize("call, error, message", [
    # fit's options, before any work
    (lambda x, y: _fresh().fit((x, y), x, steps=2.5, verbose=False), TypeError, r"steps must be an integer, got float"),
    (lambda x, y: _fresh().fit((x, y), x, steps=2, batch_size=0, verbose=False), ValueError, r"batch_size must be >= 1"),
    (lambda x, y: _fresh().fit((x, y), x, lr=-1, **FIT), ValueError, r"lr must be positive, got -1"),
    (lambda x, y: _fresh().fit((x, y), x, lr=float("nan"), **FIT), ValueError, r"lr must be positive, got nan"),
    (lambda x, y: _fresh().fit((x, y), x, lr="fast", **FIT), TypeError, r"lr must be a number, got str 'fast'"),
    (lambda x, y: _fresh().fit((x, y), x, device="tpu", **FIT), ValueError, r"device 'tpu' is not a torch device"),
    pytest.param(lambda x, y: _fresh().fit((x, y), x, device="cuda", **FIT), ValueError,
                 r"device 'cuda': CUDA is not available on this machine",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")),
    (lambda x, y: _fresh().fit((x, y), x, seed="a", **FIT), TypeError, r"seed must be an integer, got str 'a'"),
    (lambda x, y: _fresh().fit((x, y), x, select_by="nope", **FIT), ValueError, r"unknown validator 'nope'"),
    (lambda x, y: _fresh().fit((x, y), x, log_every=0, **FIT), ValueError, r"log_every must be >= 1, got 0"),
    (lambda x, y: _fresh().fit((x, y), x, optimizer="nope", **FIT), ValueError, r"optimizer must be 'sgd', 'adam'"),
    # the data given to fit
    (lambda x, y: _fresh().fit((np.where(x > 1, np.nan, x), y), x, **FIT), InputError, r"source x contains NaN"),
    (lambda x, y: _fresh().fit((np.where(x > 1, np.inf, x), y), x, **FIT), InputError, r"source x contains inf"),
    (lambda x, y: _fresh().fit((x, y), np.where(x > 1, np.nan, x), **FIT), InputError, r"target x contains NaN"),
    (lambda x, y: _fresh().fit((x[:, 0], y), x, **FIT), InputError, r"source x is 1-D \(shape \(60,\)\).*x\[:, None\]"),
    (lambda x, y: _fresh().fit((x, y + 0.5), x, **FIT), InputError, r"source labels have dtype .*must be integers"),
    (lambda x, y: _fresh().fit({"x": x, "y": y}, x, **FIT), InputError, r"unsupported source type dict"),
    (lambda x, y: _fresh().fit((x, y), "/no/such/folder", **FIT), InputError, r"unsupported target type str"),
    (lambda x, y: _fresh().fit((x.astype(object), y), x, **FIT), InputError, r"dtype object; pass a numeric array"),
    (lambda x, y: _fresh().fit((x, [str(v) for v in y]), x, **FIT), InputError, r"source y must be a tensor or numpy"),
    (lambda x, y: _fresh().fit((x.astype(np.complex64), y), x, **FIT), InputError, r"inputs must be floating point"),
    (lambda x, y: _fresh().fit((x, y), x, target_labeled=(x[:5], y[:3]), **FIT), InputError,
     r"labeled target x has 5 rows but y has 3"),
    (lambda x, y: _fresh().fit((x, y), x, target_labeled=(x[:5], y[:5] + 7), **FIT), InputError,
     r"labeled target labels must lie in \[0, 2\)"),
    # the method's own arguments
    (lambda x, y: DANN(MLP(2, (8,)), 2, trade_off=-1).fit((x, y), x, **FIT), ValueError,
     r"DANN's trade_off must be a finite number >= 0"),
    (lambda x, y: DANN(MLP(2, (8,)), 2, trade_off=float("nan")).fit((x, y), x, **FIT), ValueError,
     r"trade_off must be a finite number >= 0 .*got nan"),
    (lambda x, y: DANN(MLP(2, (8,)), 2, foo=1), TypeError, r"DANN\(\) got unknown argument\(s\) foo; its hyper.*trade_off"),
    (lambda x, y: DANN(MLP(2, (8,)), 2, preset="paper"), TypeError, r"a preset is chosen by adapt.create"),
    (lambda x, y: SourceOnly("resnet50", 2), TypeError, r"backbone must be a torch.nn.Module, got str"),
    (lambda x, y: SourceOnly(None, 2), TypeError, r"backbone must be a torch.nn.Module, got NoneType"),
    (lambda x, y: SourceOnly(MLP(2, (8,)), "two"), ValueError, r"num_classes must be an integer >= 2, got 'two'"),
    # predict, score, save and load
    (lambda x, y: _fitted_once(x, y).predict(x[:, :, None]), InputError, r"inputs of shape \(N, 2, 1\) but SourceOnly"),
    (lambda x, y: _fitted_once(x, y).predict(x[:0]), InputError, r"input x is empty"),
    (lambda x, y: _fitted_once(x, y).predict(x, batch_size=0), ValueError, r"batch_size must be an integer >= 1, got 0"),
    (lambda x, y: _fitted_once(x, y).predict("nope"), InputError, r"unsupported input type str"),
    (lambda x, y: _fitted_once(x, y).predict(None), InputError, r"no input data given"),
    (lambda x, y: _fitted_once(x, y).score(x, np.stack([y, y], 1)), InputError, r"score labels must be 1-D"),
    (lambda x, y: _fitted_once(x, y).score(x, y + np.nan), InputError, r"class labels must be integers"),
    # backbones
    (lambda x, y: MLP(2, (-1,)), ValueError, r"MLP hidden must be positive integers, got \(-1,\)"),
    (lambda x, y: MLP(0, (8,)), ValueError, r"MLP in_features must be a positive integer, got 0"),
    (lambda x, y: MLP(2, (8,), activation="Nope"), ValueError, r"MLP activation 'Nope' is not a torch.nn class"),
    (lambda x, y: ConvNet(0), ValueError, r"ConvNet in_channels must be a positive integer"),
    (lambda x, y: ConvNet(1, input_size=0), ValueError, r"ConvNet input_size must be a positive integer"),
    (lambda x, y: ConvNet(1, channels=(16, 0)), ValueError, r"ConvNet channels must be positive integers"),
    # losses, called directly
    (lambda x, y: losses.mmd(torch.randn(5, 3), torch.randn(5, 4)), ValueError, r"same feature width, got 3 and 4"),
    (lambda x, y: losses.mmd(torch.randn(5), torch.randn(5)), ValueError, r"MMD expects 2-D"),
    (lambda x, y: losses.mmd(torch.randn(1, 3), torch.randn(1, 3)), ValueError, r"at least 2 samples per domain"),
    (lambda x, y: losses.coral_loss(torch.randn(5, 3), torch.randn(5, 4)), ValueError, r"same width, got 3 and 4"),
    (lambda x, y: losses.coral_loss(torch.randn(1, 3), torch.randn(1, 3)), ValueError, r"at least 2 rows, got 1"),
    (lambda x, y: losses.entropy(torch.randn(5)), ValueError, r"entropy expects 2-D \(batch, classes\) logits"),
    (lambda x, y: losses.mcc_loss(torch.randn(5)), ValueError, r"mcc_loss expects 2-D"),
    (lambda x, y: losses.bnm_loss(torch.randn(5)), ValueError, r"bnm_loss expects 2-D"),
    (lambda x, y: losses.diversity_loss(torch.randn(2, 3, 4)), ValueError, r"diversity_loss expects 2-D"),
    # tasks
    (lambda x, y: task("nope", "a", "b"), ValueError, r"unknown benchmark 'nope'; available: "),
    (lambda x, y: task("moons", "source", "nope"), ValueError, r"unknown moons target domain 'nope'"),
    (lambda x, y: task("moons", "source", "rotated", test_fraction=1.5), ValueError,
     r"test_fraction must be a fraction in \(0, 1\), got 1.5"),
    (lambda x, y: task("moons", "source", "rotated", source_holdout=-0.1), ValueError,
     r"source_holdout must be a fraction in \[0, 1\)"),
    (lambda x, y: task("moons", "source", "rotated", protocol="nope"), ValueError, r"protocol must be 'transductive'"),
])  # fmt: skip
def test_the_api_names_each_bad_argument(fitted, call, error, message):
    _, x, y = fitted
    with pytest.raises(error, match=message):
        call(x, y)


_FITTED: dict = {}


def _fitted_once(x, y):
    if "model" not in _FITTED:
        _FITTED["model"] = _fresh()
        _FITTED["model"].fit((x, y), x, **FIT)
    return _FITTED["model"]


def test_images_of_another_size_than_a_fixed_size_backbone_takes_are_named():
    x, y = torch.randn(16, 3, 32, 32), torch.arange(16) % 2
    with pytest.raises(InputError, match=r"ConvNet\(input_size=16\) takes 16x16 images, got 32x32: build it with "
                                         r"ConvNet\(3, input_size=32\) or resize"):  # fmt: skip
        SourceOnly(ConvNet(3), 2).fit((x, y), x, **FIT)
    model = SourceOnly(ConvNet(3, input_size=32), 2)
    model.fit((x, y), x, **FIT)
    with pytest.raises(InputError, match=r"takes 32x32 images, got 64x64"):
        model.predict(torch.randn(4, 3, 64, 64))
    flat = SourceOnly(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2), torch.nn.Flatten()), 2)
    flat.fit((x, y), x, **FIT)
    with pytest.raises(
        InputError, match=r"inputs of shape \(N, 3, 64, 64\); SourceOnly was fitted on \(N, 3, 32, 32\)"
    ):
        flat.predict(torch.randn(4, 3, 64, 64))


def test_saving_onto_a_folder_is_named(fitted, tmp_path):
    model, _, _ = fitted
    with pytest.raises(IsADirectoryError, match=r"is a folder; save to a file in it, e.g. .*model.pt"):
        model.save(tmp_path)
    assert list(tmp_path.iterdir()) == []  # no temporary file left


def test_a_full_disk_names_the_file_it_could_not_write(tmp_path):
    import errno

    from adapt._files import write_atomically

    def torch_cut_short(handle):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 12096 vs 11992")

    def no_space(handle):
        raise OSError(errno.ENOSPC, "No space left on device")

    for write in (torch_cut_short, no_space):
        with pytest.raises(OSError, match=rf"{tmp_path / 'ckpt.pt'}") as caught:
            write_atomically(tmp_path / "ckpt.pt", write)
        assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(tmp_path / "ckpt.pt")
        assert list(tmp_path.iterdir()) == []


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


def test_images_that_can_never_be_read_are_refused_when_the_folder_is_scanned(tmp_path):
    from adapt.data.images import scan_folder

    root = tmp_path / "domain"
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        Image.new("RGB", (4, 4)).save(root / name / "a.png")
    (root / "dog" / "blank.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"1 image file\(s\) of 0 bytes \(an interrupted copy\?\), e.g. dog/blank.png"):
        scan_folder(root)
    (root / "dog" / "blank.png").unlink()
    (root / "cat" / "gone.png").symlink_to(tmp_path / "deleted.png")
    with pytest.raises(ValueError, match=r"1 linked image\(s\) whose target is gone, e.g. cat/gone.png -> "):
        scan_folder(root)


SUITE_MUTATIONS = [
    (lambda s: s.replace("seeds = 2", "seeds = = 2"), r"not valid TOML: Invalid value \(at line 3"),
    (lambda s: s.replace("seeds = 2", "seeds = 0"), r"seeds: must be a positive integer, got 0"),
    (lambda s: s[: s.index("[[tasks]]")] + s[s.index("[methods.source_only]") :], r"tasks: missing"),
    (lambda s: s[: s.index("[methods.source_only]")], r"methods: missing"),
    (lambda s: s.replace('source = "source"\n', ""), r"tasks\[0\].source: missing"),
    (
        lambda s: s.replace('backbone = "mlp"', 'backbone = "cnn"'),
        r"tasks\[0\].backbone: unknown backbone 'cnn'; allowed: mlp",
    ),
    (
        lambda s: s.replace('kind = "mlp"', 'kind = "transformer"'),
        r"backbones.mlp.kind: unknown backbone kind 'transformer'",
    ),
    (lambda s: s.replace("hidden = [16]", "hidden = [16]\ndepth = 3"), r"backbones.mlp.depth: unknown key"),
    (lambda s: s.replace("hidden = [16]", "hidden = [-4]"), r"backbones.mlp: .*MLP hidden must be positive integers"),
    (
        lambda s: s.replace('activation = "tanh"', 'activation = "swishy"'),
        r"unknown activation 'swishy'; allowed: relu",
    ),
    (lambda s: s.replace("steps = 40", "steps = 0"), r"train: steps must be >= 1, got 0"),
    (lambda s: s.replace("batch_size = 32", "batch_size = 0"), r"train: batch_size must be >= 1, got 0"),
    (lambda s: s.replace("lr = 0.05", "lr = -0.05"), r"train: lr must be positive, got -0.05"),
    (
        lambda s: s.replace("lr = 0.05", 'lr = 0.05\noptimizer = "rmsprop"'),
        r"optimizer must be 'sgd', 'adam' or 'adamw'",
    ),
    (lambda s: s.replace("log_every = 20", "log_every = 0"), r"train: log_every must be >= 1, got 0"),
    (
        lambda s: s.replace("eval_every = 20", 'eval_every = "often"'),
        r"eval_every: must be a non-negative integer, got str",
    ),
    (
        lambda s: s.replace("discriminator_hidden = [16]", 'trade_off = "big"'),
        r"methods.dann.trade_off: must be a number",
    ),
    (
        lambda s: s.replace("discriminator_hidden = [16]", "trade_off = -1.0"),
        r"methods.dann: DANN's trade_off must be a finite",
    ),
    (
        lambda s: s.replace("discriminator_hidden = [16]", 'discriminator_hidden = "wide"'),
        r"discriminator_hidden: must be a list",
    ),
    (lambda s: s.replace("discriminator_hidden = [16]", 'grl_schedule = "cosine"'), r"grl_schedule must be one of"),
    (
        lambda s: s.replace("discriminator_hidden = [16]", 'preset = "nope"'),
        r"methods.dann.preset: unknown preset 'nope'",
    ),
    (lambda s: s.replace("[[tasks]]", "[tasks]"), r"tasks: must be a non-empty array of tables"),
    (
        lambda s: s.replace('backbone = "mlp"', 'backbone = "mlp"\n[tasks.data]\nseed = "x"'),
        r"tasks\[0\].data.seed: must be an integer",
    ),
    (
        lambda s: s.replace('backbone = "mlp"', 'backbone = "mlp"\n[tasks.data]\ntest_fraction = 2'),
        r"tasks\[0\].data.test_fraction: must be a fraction in \(0, 1\), got 2",
    ),
    (
        lambda s: s.replace('backbone = "mlp"', 'backbone = "mlp"\n[tasks.data]\nspin = 3'),
        r"tasks\[0\].data.spin: unknown key",
    ),
    (lambda s: 'validators = ["nope"]\n' + s, r"validators\[0\]: unknown validator 'nope'"),
    (lambda s: 'validators = "entropy"\n' + s, r"validators: must be a list of validator names"),
    (lambda s: 'select_by = "entropy"\n' + s, r"select_by: 'entropy' is not in validators"),
    (lambda s: s.replace('name = "tiny"', 'name = ""'), r"name: must be a name without '/'"),
    (lambda s: s.replace('name = "tiny"', 'name = "a/b"'), r"name: must be a name without '/'.*got 'a/b'"),
    (
        lambda s: s.replace("[methods.source_only]", "[methods]\nsource_only = 1"),
        r"methods.source_only: must be a table",
    ),
    (lambda s: "budgets = [0]\n" + s, r"budgets: must be a list of positive step counts, got \[0\]"),
]


@pytest.mark.parametrize("mutation, message", SUITE_MUTATIONS)
def test_a_bad_suite_file_is_named_with_its_key(tmp_path, mutation, message):
    from helpers import write_suite

    from adapt.bench.suite import SuiteError, load_suite

    path = write_suite(tmp_path)
    path.write_text(mutation(path.read_text()))
    with pytest.raises(SuiteError, match=message) as caught:
        load_suite(str(path))
    assert str(caught.value).startswith(f"{path}: ")


@pytest.mark.parametrize("args, message", [
    (("run", "--suite", "quick", "--jobs", "0"), r"--jobs must be >= 1, got 0"),
    (("run", "--suite", "quick", "--methods", "nope"), r"nope"),
    (("run", "--suite", "no-such-suite"), r"unknown suite"),
    (("report", "/no/such/results"), r"/no/such/results"),
    (("frobnicate",), r"invalid choice: 'frobnicate'"),
])  # fmt: skip
def test_the_command_line_names_a_bad_argument_in_one_line(tmp_path, args, message):
    import re

    result = cli(*args, "--out", tmp_path / "out") if args[0] == "run" and len(args) > 1 else cli(*args)
    assert result.returncode == 2, result.stderr
    assert re.search(message, result.stderr) and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


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
