"""The harness's source-free and online protocols through the real adapt-bench entry point: one cached
source model per task and seed shared by every method, records, resume, reports, and bad suites."""

import json
import math

import pandas as pd
import pytest
import torch
from helpers import cli

from adapt.bench import load_suite
from adapt.bench.protocols import source_model_key
from adapt.bench.runner import expand
from adapt.bench.suite import SuiteError
from adapt.data.corruptions import CORRUPTIONS

SUITE = """
name = "{name}"
protocol = "{protocol}"
seeds = 1
{extra}

[source]
steps = 120
batch_size = 32
lr = 0.05

[train]
{train}

[backbones.mlp]
kind = "mlp"
hidden = [16]

[[tasks]]
benchmark = "moons"
source = "source"
target = "rotated"
backbone = "mlp"
model = {{ bottleneck_dim = 8 }}

{methods}
"""

SOURCE_FREE = {"protocol": "source-free", "extra": "", "train": "steps = 30\nbatch_size = 32\nlr = 0.01\nlog_every = 10",
               "methods": "[methods.source_only]\n[methods.shot]\n[methods.nrc]\nk = 4"}  # fmt: skip
ONLINE = {"protocol": "online", "extra": "", "train": "batch_size = 50",
          "methods": "[methods.source_only]\n[methods.bn_adapt]\n[methods.tent]\n[methods.eata]"}  # fmt: skip


def write(tmp_path, name="proto", **fields):
    path = tmp_path / f"{name}.toml"
    path.write_text(SUITE.format(name=name, **fields))
    return path


def records(out):
    return {(r["config"]["method"]): r for r in (json.loads(p.read_text()) for p in (out / "runs").glob("*.json"))}


def test_source_free_suite_trains_one_source_model_and_resumes(tmp_path):
    published = 'published = { source = "SHOT paper", avg = { shot = 88.6 } }'
    suite, out = write(tmp_path, **{**SOURCE_FREE, "extra": published}), tmp_path / "results"
    result = cli("run", "--suite", suite, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    runs = records(out)
    assert set(runs) == {"source_only", "shot", "nrc"} and all(r["status"] == "ok" for r in runs.values())
    assert len(list((out / "source-models").glob("*.pt"))) == 1  # trained once, shared by the three runs
    assert sorted(r["source_model_cached"] for r in runs.values()) == [False, True, True]
    assert runs["shot"]["config"]["adaptation"] == "source-free"
    assert runs["shot"]["spec"]["source_train"] == {"steps": 120, "batch_size": 32, "lr": 0.05}
    trained = runs["shot"]["config"]["source_train"]  # resolved: what trained the source model
    assert {k: trained["train"][k] for k in ("steps", "batch_size", "lr", "optimizer")} == {
        "steps": 120, "batch_size": 32, "lr": 0.05, "optimizer": "sgd"}  # fmt: skip
    assert trained["hparams"]["bottleneck_dim"] == 8
    assert len(runs["shot"]["curve"]) == 3 and runs["source_only"]["curve"] == []
    assert "source-free: each method adapts the same cached source model" in result.stdout

    # a rerun does nothing; a lost record is redone from the cached model, to the same result
    again = cli("run", "--suite", suite, "--out", out, "--quiet")
    assert "3 already done" in again.stdout, again.stdout
    shot_file = out / "runs" / f"{runs['shot']['id']}.json"
    shot_file.unlink()
    redo = cli("run", "--suite", suite, "--out", out, "--quiet")
    assert redo.returncode == 0, redo.stderr
    redone = records(out)["shot"]
    assert redone["source_model_cached"] and redone["accuracy"] == runs["shot"]["accuracy"]

    report = cli("report", out)
    assert report.returncode == 0, report.stderr
    table = pd.read_csv(out / "report" / "runs.csv")
    assert set(table["adaptation"]) == {"source-free"}
    assert "shot" in (out / "report" / "transfer.md").read_text()
    assert "88.6" in (out / "report" / "published.md").read_text()


def test_source_free_estimators_calibrate_on_the_source_models_outputs(tmp_path):
    """Source-free: the accuracy estimators calibrate on the *source model's* held-out source logits (its
    provider's), computed once; the adapted model never runs on source data. So DoC minus the mean target
    confidence (source accuracy - source confidence) is the source model's at every checkpoint of every run,
    and the unadapted model has a scored checkpoint (step 0) for the estimators' errors and the guard."""
    extra = 'validators = ["im", "avg_confidence", "doc", "nuclear", "mano"]\neval_every = 10\nsource_holdout = 0.1'
    suite, out = write(tmp_path, **{**SOURCE_FREE, "extra": extra}), tmp_path / "results"
    result = cli("run", "--suite", suite, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    runs = records(out)
    (baseline,) = runs["source_only"]["curve"]
    assert baseline["step"] == 0 and baseline["target_accuracy"] == pytest.approx(runs["source_only"]["accuracy"])
    calibration = baseline["val_doc"] - baseline["val_avg_confidence"]
    for method in ("shot", "nrc"):
        curve = runs[method]["curve"]
        assert len(curve) == 3
        assert [p["val_doc"] - p["val_avg_confidence"] for p in curve] == pytest.approx([calibration] * 3, abs=1e-9)
        assert len({round(p["val_avg_confidence"], 9) for p in curve}) > 1  # the adapted model does move
    report = cli("report", out)
    assert report.returncode == 0, report.stderr
    assert "mano" in (out / "report" / "estimation.md").read_text()
    guard = (out / "report" / "guard.md").read_text()  # each method beside the unadapted model
    assert "shot" in guard and "nrc" in guard


def test_online_suite_streams_the_target_once_through_each_test_time_method(tmp_path):
    suite, out = write(tmp_path, **ONLINE), tmp_path / "results"
    result = cli("run", "--suite", suite, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    runs = records(out)
    assert set(runs) == {"source_only", "bn_adapt", "tent", "eata"}
    assert len(list((out / "source-models").glob("*.pt"))) == 1
    baseline = runs["source_only"]
    assert baseline["accuracy"] == baseline["accuracy_after"]  # nothing adapts
    for name in ("bn_adapt", "tent", "eata"):
        r = runs[name]
        assert r["status"] == "ok" and 0 <= r["accuracy"] <= 1 and 0 <= r["accuracy_after"] <= 1
        assert r["stream_batches"] == runs["tent"]["stream_batches"] > 1, name
    assert runs["bn_adapt"]["accuracy"] > baseline["accuracy"]  # the rotated moons, through BatchNorm statistics
    assert "Online target accuracy" in result.stdout
    report = cli("report", out)
    assert report.returncode == 0, report.stderr
    table = pd.read_csv(out / "report" / "runs.csv")
    assert table["accuracy_after"].notna().all() and set(table["adaptation"]) == {"online"}
    assert "online accuracy over one pass" in (out / "report" / "transfer.md").read_text()


def test_stream_batches_cover_the_target_once(tmp_path):
    from adapt.bench.protocols import stream
    from adapt.data import task
    from adapt.testtime.streams import StreamConfig

    moons = task("moons", "source", "rotated")
    config = StreamConfig(batch_size=50)
    loader = stream(moons.target_test, seed=3, config=config)
    batches = list(loader)
    assert len(batches) == math.ceil(len(moons.target_test) / 50)
    first = torch.cat([b[0] for b in batches])
    assert first.shape[0] == len(moons.target_test)
    assert torch.equal(first, torch.cat([b[0] for b in stream(moons.target_test, seed=3, config=config)]))
    assert not torch.equal(first, torch.cat([b[0] for b in stream(moons.target_test, seed=4, config=config)]))
    sorted_labels = torch.cat([b[1] for b in stream(moons.target_test, 3, StreamConfig(50, "correlated"))])
    assert torch.equal(sorted_labels, sorted_labels.sort().values)  # delta 0: sorted by label
    assert sorted(sorted_labels.tolist()) == sorted(torch.cat([b[1] for b in batches]).tolist())


def test_an_online_suite_streams_a_label_correlated_order(tmp_path):
    fields = {**ONLINE, "train": 'batch_size = 50\norder = "correlated"\ndirichlet_delta = 0.1',
              "methods": "[methods.source_only]\n[methods.lame]\n[methods.sar]"}  # fmt: skip
    suite = load_suite(str(write(tmp_path, **fields)))
    resolved = expand(suite)[1].resolved()
    every_example = {"domains": "sequence", "examples_per_domain": None, "charge_compute": False}
    assert resolved["train"] == {"batch_size": 50, "order": "correlated", "dirichlet_delta": 0.1, **every_example}
    shuffled = expand(load_suite(str(write(tmp_path, "plain", **ONLINE))))[1].resolved()
    assert shuffled["train"] == {"batch_size": 50, "order": "shuffled", "dirichlet_delta": 0.0, **every_example}
    out = tmp_path / "results"
    result = cli("run", "--suite", write(tmp_path, **fields), "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    runs = records(out)
    assert {r["status"] for r in runs.values()} == {"ok"} and set(runs) == {"source_only", "lame", "sar"}
    assert runs["lame"]["accuracy_after"] == runs["source_only"]["accuracy"]  # LAME never changes the model


def test_a_compute_charged_suite_adapts_on_one_batch_in_relative_speed(tmp_path):
    fields = {**ONLINE, "train": "batch_size = 20\nexamples_per_domain = 100\ncharge_compute = true",
              "methods": "[methods.source_only]\n[methods.cotta]\naugment = \"none\""}  # fmt: skip
    out = tmp_path / "results"
    result = cli("run", "--suite", write(tmp_path, **fields), "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    runs = records(out)
    assert {r["status"] for r in runs.values()} == {"ok"}
    speed = runs["cotta"]["relative_speed"]
    assert speed > 1  # a backward pass, an EMA and a restore cost more than one forward pass
    assert runs["cotta"]["stream_batches"] == math.ceil(100 / 20 / speed)  # the first of every `speed` batches
    assert "relative_speed" not in runs["source_only"]


def test_source_model_key_depends_on_what_trains_it_and_not_on_the_method(tmp_path):
    suite = load_suite(str(write(tmp_path, **SOURCE_FREE)))
    specs = expand(suite)
    keys = {source_model_key(s.resolved()) for s in specs}
    assert len(specs) == 3 and len(keys) == 1
    assert len({s.run_id for s in specs}) == 3
    resolved = specs[0].resolved()
    longer = {**resolved["source_train"], "train": {**resolved["source_train"]["train"], "steps": 121}}
    assert source_model_key(resolved | {"source_train": longer}) not in keys
    assert source_model_key(resolved | {"seed": 1}) not in keys
    newer = {**resolved["revisions"], "library": resolved["revisions"]["library"] + 1}
    assert source_model_key(resolved | {"revisions": newer}) not in keys  # the code changed: trained again


@pytest.mark.parametrize(
    "fields, message",
    [
        ({**SOURCE_FREE, "methods": "[methods.dann]"}, "methods.*dann.*shot"),
        ({**ONLINE, "methods": "[methods.shot]"}, "methods.*shot.*tent"),
        ({**SOURCE_FREE, "protocol": "sourcefree"}, "unknown protocol 'sourcefree'.*source-free"),
        ({**ONLINE, "extra": "budgets = [10, 20]"}, "online suite streams the target once"),
        ({**SOURCE_FREE, "methods": "[methods.nrc]\nk = 0"}, "k must be a positive integer"),
        ({**SOURCE_FREE, "methods": "[methods.shot]\nbottleneck_dim = 3"}, "methods.shot"),
        ({**SOURCE_FREE, "extra": 'validators = ["source_accuracy", "im"]\neval_every = 10\nsource_holdout = 0.1'},
         "source_accuracy score source data"),
        ({**SOURCE_FREE, "protocol": "uda", "methods": "[methods.dann]"}, r"\[source\] table is for source-free"),
        ({**ONLINE, "extra": 'validators = ["im"]\neval_every = 10'}, "no checkpoints to select from"),
        ({**ONLINE, "train": "batch_size = 50\nlr = 0.1"}, r"train\.lr.*only sets batch_size, order, dirichlet_delta"),
        ({**ONLINE, "train": 'order = "sorted"'}, "order must be 'shuffled' or 'correlated'"),
        ({**ONLINE, "train": "dirichlet_delta = 0.1"}, "dirichlet_delta applies to order = 'correlated' only"),
        ({**ONLINE, "train": 'order = "correlated"\ndirichlet_delta = -1'}, "dirichlet_delta must be >= 0"),
        ({**ONLINE, "methods": '[methods.lame]\naffinity = "cosine"'}, "affinity must be one of knn, rbf, linear"),
        ({**ONLINE, "methods": "[methods.sar]\nentropy_margin = 0"}, "entropy_margin"),
        ({**ONLINE, "methods": '[methods.tent]\noptimizer = "rmsprop"'}, "optimizer must be 'adam' or 'sgd'"),
        ({**ONLINE, "methods": "[methods.eata]\nentropy_margin = 3.0"}, "entropy_margin"),
        ({**SOURCE_FREE, "methods": "[methods.shot]\n[search.shot]\nlr = [\"choice\", 0.1, 0.2]"}, "search.shot"),
    ],
)  # fmt: skip
@pytest.mark.bad_input
def test_bad_protocol_suites_say_what_is_wrong(tmp_path, fields, message):
    with pytest.raises(SuiteError, match=message):
        load_suite(str(write(tmp_path, **fields)))


def test_a_source_free_suite_searches_its_methods_hyperparameters(tmp_path):
    fields = {**SOURCE_FREE, "extra": "search_draws = 2",
              "methods": '[methods.shot]\n[search.shot]\npseudo_label_weight = ["log_uniform", 0.1, 1.0]'}  # fmt: skip
    specs = expand(load_suite(str(write(tmp_path, **fields))))
    weights = {s.hparams["pseudo_label_weight"] for s in specs}
    assert len(specs) == 2 and len(weights) == 2 and all(0.1 <= w <= 1.0 for w in weights)


def test_a_protocol_suite_needs_its_source_settings(tmp_path):
    path = write(tmp_path, **SOURCE_FREE)
    path.write_text(path.read_text().replace("[source]\nsteps = 120\nbatch_size = 32\nlr = 0.05\n", ""))
    with pytest.raises(SuiteError, match=r"add a \[source\] table"):
        load_suite(str(path))


def test_spec_ids_are_the_run_ids_records_had_before_0_2():
    """A record written before run ids hashed the resolved configuration carries its spec's id, so a
    sweep finds it (and reruns it as stale) instead of mixing it in."""
    runs = expand(load_suite("quick"))
    # the ids the quick suite's first and last runs had before (commit 0ef192d)
    assert (runs[0].label, runs[0].spec_id) == ("source_only | moons/source->rotated | seed 0", "de6d735569d60b30")
    assert runs[-1].spec_id == "8c6c2106798deb43"
    assert "adaptation" not in runs[0].config() and runs[0].resolved()["adaptation"] == "uda"
    assert runs[0].run_id != runs[0].spec_id


def test_the_source_model_does_not_depend_on_what_ran_before_in_the_process(tmp_path):
    from adapt.bench.protocols import source_model
    from adapt.bench.runner import _load_task

    spec = expand(load_suite(str(write(tmp_path, **SOURCE_FREE))))[0]
    t = spec.task
    task = _load_task(t.benchmark, t.source, t.target, t.protocol, json.dumps(t.data), None, 0.0)
    states = []
    for i, rng_use in enumerate((0, 1000)):
        torch.manual_seed(99)
        torch.rand(rng_use)  # a worker process that ran other things first
        model, cached = source_model(spec.resolved(), task, tmp_path / f"cache{i}", torch.device("cpu"), False)
        assert not cached
        states.append(model.state_dict())
    for name, value in states[0].items():
        assert torch.equal(value, states[1][name]), name


def test_a_damaged_cached_source_model_is_trained_again(tmp_path):
    from adapt.bench.protocols import source_model
    from adapt.bench.runner import _load_task

    spec = expand(load_suite(str(write(tmp_path, **SOURCE_FREE))))[0]
    t = spec.task
    task = _load_task(t.benchmark, t.source, t.target, t.protocol, json.dumps(t.data), None, 0.0)
    folder = tmp_path / "cache"
    first, _ = source_model(spec.resolved(), task, folder, torch.device("cpu"), False)
    (path,) = folder.glob("*.pt")
    path.write_bytes(path.read_bytes()[:100])  # a disk that filled up, a copy cut short
    with pytest.warns(UserWarning, match="cannot be read.*training it again"):
        again, cached = source_model(spec.resolved(), task, folder, torch.device("cpu"), False)
    assert not cached
    for name, value in first.state_dict().items():
        assert torch.equal(value, again.state_dict()[name]), name


@pytest.mark.slow
def test_a_continual_suite_records_the_online_accuracy_of_each_domain(tmp_path):
    suite = tmp_path / "continual.toml"
    suite.write_text(SUITE.format(name="continual", protocol="online", extra="", train='batch_size = 128\ndomains = "sequence"',
                                  methods="[methods.source_only]\n[methods.bn_adapt]").replace(
        'benchmark = "moons"\nsource = "source"\ntarget = "rotated"\nbackbone = "mlp"\nmodel = { bottleneck_dim = 8 }',
        'benchmark = "optdigits-c"\nsource = "clean"\ntarget = "all-5x2"\nbackbone = "cnn"').replace(
        '[backbones.mlp]\nkind = "mlp"\nhidden = [16]', '[backbones.cnn]\nkind = "convnet"'))  # fmt: skip
    with pytest.raises(SuiteError, match="unknown optdigits-c domain 'all-5x2'"):
        load_suite(str(suite))
    suite.write_text(
        suite.read_text().replace("all-5x2", "all-5x10").replace("[source]\nsteps = 120", "[source]\nsteps = 60")
    )
    out = tmp_path / "results"
    result = cli("run", "--suite", suite, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    runs = records(out)
    for r in runs.values():
        assert [p["domain"] for p in r["curve"]] == [f"{c}-5" for c in CORRUPTIONS] * 10
        assert [p["step"] for p in r["curve"]] == list(range(1, 151))
        assert r["accuracy"] == pytest.approx(sum(p["target_accuracy"] for p in r["curve"]) / 150)
    baseline = runs["source_only"]["curve"]
    assert baseline[:15] == [{**p, "step": p["step"] - 15} for p in baseline[15:30]]  # nothing adapts: rounds repeat
    report = out / "report"
    assert (report / "stream.png").exists() and "round 10" in (report / "stream.md").read_text()


PRETRAINED_SUITE = """
name = "pretrained"
protocol = "online"
seeds = 1

[source]
pretrained = true

[train]
batch_size = 250

[backbones.r18]
kind = "resnet18"
weights = "IMAGENET1K_V1"

[[tasks]]
benchmark = "imagenet-c"
source = "clean"
target = "gaussian_noise-5"
backbone = "r18"

[methods.source_only]
[methods.tent]
preset = "imagenet"
"""


def test_a_pretrained_source_model_is_the_backbones_own_classifier(tmp_path):
    """``[source] pretrained = true``: nothing trains; SourceOnly's online accuracy is the pretrained torchvision
    classifier's own (random weights stand in for ImageNet's, in a local torch cache)."""
    import numpy as np
    import torchvision
    import torchvision.transforms as T
    from PIL import Image

    from adapt.models.resnet import cached_weights_path

    rng = np.random.default_rng(0)
    wnids = [f"n{i:08d}" for i in range(1000)]  # the pretrained head's 1000 classes, in order
    images = []
    for folder in ("imagenet/train", "ImageNet-C/gaussian_noise/5"):
        for wnid in wnids:
            path = tmp_path / "data" / folder / wnid / "0.JPEG"
            path.parent.mkdir(parents=True)
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(path, format="JPEG")
            images.append(path)
    env = {"TORCH_HOME": str(tmp_path / "torch")}
    weights = cached_weights_path("resnet18", "IMAGENET1K_V1").name
    torch.manual_seed(0)
    reference = torchvision.models.resnet18().eval()
    (tmp_path / "torch" / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(reference.state_dict(), tmp_path / "torch" / "hub" / "checkpoints" / weights)
    suite, out = tmp_path / "pretrained.toml", tmp_path / "results"
    suite.write_text(PRETRAINED_SUITE)
    result = cli("run", "--suite", suite, "--out", out, "--data-root", tmp_path / "data", "--quiet", env=env)
    assert result.returncode == 0, result.stderr
    runs = records(out)
    assert {r["status"] for r in runs.values()} == {"ok"}
    assert runs["source_only"]["config"]["source_train"]["pretrained"] is True
    transform = T.Compose([T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    x = torch.stack([transform(Image.open(p).convert("RGB")) for p in images[1000:]])
    with torch.no_grad():
        expected = float((reference(x).argmax(1) == torch.arange(1000)).float().mean())
    assert runs["source_only"]["accuracy"] == pytest.approx(expected)
    bad = PRETRAINED_SUITE.replace("pretrained = true", "pretrained = true\nsteps = 10")
    suite.write_text(bad)
    with pytest.raises(SuiteError, match="a pretrained source model trains nothing: remove steps"):
        load_suite(str(suite))


def test_the_cifar10c_continual_suite_runs_robustbenchs_classifier_as_the_source(tmp_path):
    """The shipped ``cifar10c-continual`` suite, shrunk (a WRN-10-1 in RobustBench's checkpoint layout, 4 images
    per corruption, batches of 8): every method runs the 15-corruption stream, and SourceOnly's online accuracy
    is the checkpoint's own classifier's on the [0, 1] images (the backbone undoes the benchmark's standardizing)."""
    import pickle

    import numpy as np

    from adapt.bench.suite import available_suites
    from adapt.data.download import mark_complete
    from adapt.models import WideResNet, read_robustbench_checkpoint

    root, per = tmp_path / "data", 4
    (root / "cifar-10-batches-py").mkdir(parents=True)
    (root / "CIFAR-10-C").mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (6, 3072), dtype=np.uint8), b"labels": [i % 10 for i in range(6)]}
        (root / "cifar-10-batches-py" / name).write_bytes(pickle.dumps(batch))
    # images that differ in colour (i.i.d. noise images all look alike to a network)
    colours = rng.uniform(0, 255, (15, 5 * per, 1, 1, 3))
    noise = rng.normal(0, 20, (15, 5 * per, 32, 32, 3))
    stream = {c: np.clip(colours[i] + noise[i], 0, 255).astype(np.uint8) for i, c in enumerate(CORRUPTIONS)}
    for c, images in stream.items():
        np.save(root / "CIFAR-10-C" / f"{c}.npy", images)
    labels = np.tile(np.arange(per) % 10, 5)
    np.save(root / "CIFAR-10-C" / "labels.npy", labels)
    mark_complete("cifar10-c", root)
    torch.manual_seed(0)
    trained = WideResNet(depth=10, widen_factor=1)  # RobustBench's layout (tests/models/test_wide_resnet.py)
    with torch.no_grad():  # trained-looking: BatchNorm statistics of images in [0, 1], a classifier that varies
        for _ in range(3):
            trained(torch.rand(32, 3, 1, 1) + 0.1 * torch.randn(32, 3, 32, 32))
        trained.fc.weight.normal_(0, 3.0)
    torch.save({"state_dict": {f"module.{k}": v for k, v in trained.state_dict().items()}}, tmp_path / "Standard.pt")
    text = available_suites()["cifar10c-continual"].read_text()
    text = text.replace("depth = 28", "depth = 10").replace("widen_factor = 10", "widen_factor = 1")
    text = text.replace('"models/cifar10/corruptions/Standard.pt"', f'"{tmp_path / "Standard.pt"}"')
    suite, out = tmp_path / "cifar10c-continual.toml", tmp_path / "results"
    suite.write_text(text.replace("batch_size = 200", "batch_size = 8"))
    result = cli("run", "--suite", suite, "--out", out, "--data-root", root, "--quiet")
    assert result.returncode == 0, result.stderr
    runs = records(out)
    assert len(runs) == 10 and {r["status"] for r in runs.values()} == {"ok"}
    severity5 = slice(4 * per, 5 * per)  # the release's fifth block
    x = torch.from_numpy(np.concatenate([stream[c][severity5] for c in CORRUPTIONS])).permute(0, 3, 1, 2) / 255.0
    classifier = WideResNet(depth=10, widen_factor=1)
    classifier.load_state_dict(read_robustbench_checkpoint(tmp_path / "Standard.pt"))
    with torch.no_grad():
        predicted = classifier.eval()(x).argmax(1)
    correct = (predicted.numpy() == np.tile(labels[severity5], 15)).reshape(15, per).mean(1)
    assert len(set(predicted.tolist())) > 1 and 0 < correct.mean() < 1
    assert [p["target_accuracy"] for p in runs["source_only"]["curve"]] == pytest.approx(correct.tolist())
    assert runs["source_only"]["accuracy"] == pytest.approx(correct.mean())
    assert [p["domain"] for p in runs["tent"]["curve"]][:2] == ["gaussian_noise-5", "shot_noise-5"]


def test_a_pretrained_source_model_needs_a_pretrained_head_for_the_tasks_classes():
    from types import SimpleNamespace

    from adapt.bench.protocols.source_models import take_pretrained_head
    from adapt.errors import InputError
    from adapt.methods import create
    from adapt.models import ConvNet

    digits = SimpleNamespace(name="digits", num_classes=10, input_shape=(1, 16, 16))
    with pytest.raises(InputError, match="has no pretrained one"):
        take_pretrained_head(create("source_only", ConvNet(1), 10), digits)
    backbone = ConvNet(1)
    backbone.pretrained_head = (torch.zeros(1000, backbone.out_features), torch.zeros(1000))
    with pytest.raises(InputError, match=r"1000 classes on .* digits has 10 classes"):
        take_pretrained_head(create("source_only", backbone, 10), digits)
