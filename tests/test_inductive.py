"""A few labeled target examples: the engine's third stream, MME, the TargetOnly/FineTune baselines,
k-shot and published SSDA splits, and pretrained weights from the local torch cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from adapt import DANN, MME, FineTune, InputError, SourceOnly, TargetOnly
from adapt.data import few_shot_split, published_ssda_split, task
from adapt.data.download import mark_complete
from adapt.data.fewshot import _image_paths
from adapt.losses import gradient_reversal, minimax_entropy_loss
from adapt.models import MLP
from adapt.models.heads import CosineClassifier
from adapt.testing import default_backbone, toy_problem

FAST = dict(batch_size=16, device="cpu", verbose=False, log_every=5)


@pytest.fixture(scope="module")
def toy():
    data = toy_problem(n=60)
    data["labeled"] = (data["xt"][:9], data["yt"][:9])
    return data


def _dann():
    torch.manual_seed(0)
    return DANN(default_backbone(), 3, discriminator_hidden=(16,))


# ----------------------------------------------------------------------------- the engine's third stream
class Stop(Exception):
    pass


class StopAt:
    def __init__(self, step: int) -> None:
        self.every = step

    def __call__(self, step, model):
        raise Stop


@pytest.mark.parametrize("as_dataset", [False, True])
def test_a_run_with_labeled_target_examples_resumes_to_the_same_weights(tmp_path, toy, as_dataset):
    labeled = toy["labeled"]
    if as_dataset:  # through adapt's DataLoader and its resumable sampler
        labeled = torch.utils.data.Subset(torch.utils.data.TensorDataset(*toy["labeled"]), range(9))
    fit = lambda m, **kw: m.fit((toy["xs"], toy["ys"]), toy["xt"], target_labeled=labeled, steps=40,  # noqa: E731
                                seed=2, **FAST, **kw)  # fmt: skip
    plain = _dann()
    history = fit(plain)
    path = tmp_path / "run.pt"
    with pytest.raises(Stop):
        fit(_dann(), checkpoint_path=path, checkpoint_every=15, callbacks=[StopAt(25)])
    resumed = _dann()
    resumed_history = fit(resumed, checkpoint_path=path, checkpoint_every=15)
    assert resumed_history.attrs["resumed_from_step"] == 15
    for (name, a), (_, b) in zip(plain.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    columns = [c for c in history.columns if c != "seconds"]
    assert history[columns].equals(resumed_history[columns])


def test_the_labeled_target_weight_scales_its_term(toy):
    terms = []
    for weight in (1.0, 0.25):
        history = _dann().fit((toy["xs"], toy["ys"]), toy["xt"], target_labeled=toy["labeled"], steps=1,
                              labeled_target_weight=weight, **FAST)  # fmt: skip
        terms.append(history["target_classification"].iloc[0])
    assert terms[1] == pytest.approx(0.25 * terms[0], rel=1e-6)


def test_bad_labeled_target_examples_get_errors_that_name_them(toy):
    source, target = (toy["xs"], toy["ys"]), toy["xt"]
    with pytest.raises(InputError, match=r"labeled target labels must lie in \[0, 3\)"):
        _dann().fit(source, target, target_labeled=(toy["xt"][:4], torch.tensor([0, 1, 2, 5])), steps=1, **FAST)
    with pytest.raises(InputError, match=r"target samples have shape \(6,\) but .* \(5,\)|shape \(5,\)"):
        _dann().fit(source, target, target_labeled=(toy["xt"][:4, :5], torch.tensor([0, 1, 2, 1])), steps=1, **FAST)
    with pytest.raises(InputError, match="labeled target x has 4 rows but y has 3"):
        _dann().fit(source, target, target_labeled=(toy["xt"][:4], torch.tensor([0, 1, 2])), steps=1, **FAST)
    with pytest.raises(InputError, match="labeled target must be labeled"):
        _dann().fit(source, target, target_labeled=toy["xt"][:4], steps=1, **FAST)
    with pytest.raises(ValueError, match="labeled_target_weight must be a finite number >= 0"):
        _dann().fit(source, target, target_labeled=toy["labeled"], steps=1, labeled_target_weight=-1.0, **FAST)


# ----------------------------------------------------------------------------- MME
def _authors_predictor(weight: torch.Tensor, temperature: float):
    """Transcribed from SSDA_MME model/basenet.py Predictor.forward: reverse, normalize, fc / temp."""

    def forward(x, reverse=False, eta=0.1):
        if reverse:
            x = gradient_reversal(x, eta)
        x = nn.functional.normalize(x)
        return nn.functional.linear(x, weight) / temperature

    return forward


def _authors_adentropy(F1, feat, lamda, eta=1.0):
    """Transcribed from SSDA_MME utils/loss.py adentropy."""
    out_t1 = F1(feat, reverse=True, eta=eta)
    out_t1 = nn.functional.softmax(out_t1, dim=1)
    return lamda * torch.mean(torch.sum(out_t1 * (torch.log(out_t1 + 1e-5)), 1))


def test_mme_entropy_term_matches_the_authors_adentropy_value_and_gradients():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(8, 5, generator=g)
    weight = torch.randn(4, 5, generator=g)
    ours_f, theirs_f = features.clone().requires_grad_(), features.clone().requires_grad_()
    classifier = CosineClassifier(5, 4, temperature=0.05)
    classifier.fc.weight.data.copy_(weight)
    theirs_w = weight.clone().requires_grad_()
    ours = 0.1 * minimax_entropy_loss(classifier(gradient_reversal(ours_f)))
    theirs = _authors_adentropy(_authors_predictor(theirs_w, 0.05), theirs_f, 0.1)
    ours.backward()
    theirs.backward()
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-6)
    torch.testing.assert_close(ours_f.grad, theirs_f.grad)
    torch.testing.assert_close(classifier.fc.weight.grad, theirs_w.grad)


def test_mme_takes_two_steps_and_gains_from_a_few_target_labels(toy):
    scores = {}
    for name, labeled in (("unsupervised", None), ("3-shot", toy["labeled"])):
        torch.manual_seed(0)
        model = MME(default_backbone(), 3)
        history = model.fit((toy["xs"], toy["ys"]), toy["xt"], target_labeled=labeled, steps=60, lr=0.05, **FAST)
        assert {"classification", "minimax_entropy"} <= set(history.columns)
        scores[name] = model.score(toy["xt"][9:], toy["yt"][9:])
    assert scores["3-shot"] > 0.6 and scores["3-shot"] >= scores["unsupervised"]


# ----------------------------------------------------------------------------- TargetOnly and FineTune
def test_target_only_learns_from_the_labeled_target_alone(toy):
    torch.manual_seed(0)
    model = TargetOnly(default_backbone(), 3)
    history = model.fit(target_labeled=toy["labeled"], steps=60, lr=0.05, **FAST)
    assert list(history.columns) == ["step", "progress", "lr", "seconds", "target_classification", "total"]
    assert model.score(toy["xt"][9:], toy["yt"][9:]) > 0.6
    with pytest.raises(InputError, match="TargetOnly trains on labeled target examples"):
        TargetOnly(default_backbone(), 3).fit(target=toy["xt"], steps=1, **FAST)
    with pytest.raises(InputError, match="TargetOnly does not use source data"):
        TargetOnly(default_backbone(), 3).fit((toy["xs"], toy["ys"]), target_labeled=toy["labeled"], steps=1, **FAST)


@pytest.fixture(scope="module")
def source_model(toy):
    torch.manual_seed(0)
    model = SourceOnly(MLP(6, (16,)), 3, bottleneck_dim=8)
    model.fit((toy["xs"], toy["ys"]), toy["xt"], steps=40, lr=0.05, **FAST)
    return model


@pytest.mark.parametrize("layers, frozen", [("all", ()), ("head", ("backbone", "bottleneck")),
                                            ("bottleneck+head", ("backbone",))])  # fmt: skip
def test_finetune_trains_the_layers_asked_for_and_leaves_the_source_model_alone(toy, source_model, layers, frozen):
    before = {k: v.clone() for k, v in source_model.state_dict().items()}
    model = FineTune.from_source(source_model, train_layers=layers)
    history = model.fit(target_labeled=toy["labeled"], steps=30, lr=0.05, **FAST)
    assert "target_classification" in history
    for key, value in source_model.state_dict().items():
        assert torch.equal(value, before[key]), f"the source model's {key} changed"
    for key, value in model.state_dict().items():
        part = key.split(".")[0]
        changed = not torch.equal(value, before[key])
        if part in frozen:  # weights and BatchNorm statistics stay the source model's
            assert not changed, f"{layers}: frozen {key} changed"
        elif (key.endswith("weight") and part != "bottleneck") or part == "classifier":
            assert changed, f"{layers}: {key} did not train"
    assert model.score(toy["xt"][9:], toy["yt"][9:]) > 0.6


def test_uda_then_finetune_save_load_and_errors(toy, tmp_path):
    dann = _dann()
    dann.fit((toy["xs"], toy["ys"]), toy["xt"], steps=20, **FAST)
    model = FineTune.from_source(dann, train_layers="head")
    model.fit(toy["xt"], target_labeled=toy["labeled"], steps=10, **FAST)
    model.save(tmp_path / "ft.pt")
    loaded = FineTune.load(tmp_path / "ft.pt", backbone=default_backbone())
    assert loaded.train_layers == "head"
    assert torch.equal(loaded.predict_logits(toy["xt"]), model.predict_logits(toy["xt"]))
    with pytest.raises(InputError, match="FineTune trains on labeled target examples"):
        FineTune.from_source(dann).fit(toy["xt"], steps=1, **FAST)
    with pytest.raises(ValueError, match="train_layers must be one of all, head, bottleneck\\+head"):
        FineTune.from_source(dann, train_layers="last")


# ----------------------------------------------------------------------------- k-shot splits
def test_k_shot_split_is_stratified_seeded_and_kept_out_of_what_is_scored():
    base = task("optdigits", "optdigits", "optdigits-m")
    split = few_shot_split(base, shots=3, seed=1)
    x, y = split.target_labeled.tensors
    assert np.bincount(y.numpy()).tolist() == [3] * 10
    assert len(split.target_test) == len(base.target_test) - 30 == len(split.target_train)
    moons = few_shot_split(task("moons", "source", "rotated"), shots=5, seed=1)  # no two inputs alike
    scored, labeled = moons.target_test.tensors[0], moons.target_labeled.tensors[0]
    assert not any((scored == row).all(dim=1).any() for row in labeled)  # no labeled example is scored
    assert len(scored) + len(labeled) == 300
    assert split.extra["target_labels"] == "3-shot (seed 1)"
    again, other = few_shot_split(base, 3, seed=1), few_shot_split(base, 3, seed=2)
    assert torch.equal(again.target_labeled.tensors[0], x) and not torch.equal(other.target_labeled.tensors[0], x)


def test_all_labels_need_the_inductive_protocol_and_few_examples_get_an_error():
    with pytest.raises(InputError, match="nothing is left to score under the transductive protocol"):
        few_shot_split(task("moons", "source", "rotated"), "all")
    inductive = task("moons", "source", "rotated", protocol="inductive")
    split = few_shot_split(inductive, "all")
    assert len(split.target_labeled) == len(inductive.target_train) and split.target_test is inductive.target_test
    with pytest.raises(InputError, match="too few for 500 labeled per class"):
        few_shot_split(inductive, 500)
    with pytest.raises(ValueError, match="shots must be an integer >= 1"):
        few_shot_split(inductive, 0)


# ----------------------------------------------------------------------------- Saito et al.'s published splits
CLASSES = ("Alarm_Clock", "Backpack", "Bike")


@pytest.fixture
def officehome_root(tmp_path):
    rng = np.random.default_rng(0)
    for domain in ("Art", "Real_World"):
        for c in CLASSES:
            for k in range(4):
                path = tmp_path / "officehome" / domain / c / f"{k:05d}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(path, format="JPEG")
    mark_complete("officehome", tmp_path)
    return tmp_path


def test_published_ssda_split_reads_saito_files_in_their_format(officehome_root, tmp_path):
    splits = tmp_path / "ssda-splits"
    splits.mkdir()
    # the release's format: the domain folder named 'Real', '<path> <label>' per line
    lines = [f"Real/{c}/{k:05d}.jpg {i}" for i, c in enumerate(CLASSES) for k in (1,)]
    (splits / "labeled_target_images_Real_1.txt").write_text("\n".join(lines) + "\n")
    base = task("officehome", "Art", "Real_World", root=officehome_root)
    split = published_ssda_split(base, 1, splits)
    assert len(split.target_labeled) == 3 and [int(split.target_labeled[i][1]) for i in range(3)] == [0, 1, 2]
    scored = {p.split("/")[-2] + "/" + p.split("/")[-1] for p in _image_paths(split.target_test)}
    assert len(scored) == 9 and not any(f"{c}/00001.jpg" in scored for c in CLASSES)
    assert split.target_labeled[0][0].shape == base.target_train[0].shape  # the training transforms

    (splits / "labeled_target_images_Real_1.txt").write_text("Real/Bike/00099.jpg 2\n")
    with pytest.raises(InputError, match=r"labeled_target_images_Real_1.txt:1: Real/Bike/00099.jpg is not among"):
        published_ssda_split(base, 1, splits)
    (splits / "labeled_target_images_Real_1.txt").write_text("Real/Bike/00001.jpg\n")
    with pytest.raises(InputError, match="expected '<path> <label>'"):
        published_ssda_split(base, 1, splits)
    with pytest.raises(FileNotFoundError, match=r"labeled_target_images_Real_3.txt.*SSDA_MME"):
        published_ssda_split(base, 3, splits)


# ----------------------------------------------------------------------------- pretrained weights
def test_pretrained_weights_come_from_the_local_torch_cache(tmp_path, monkeypatch):
    import torchvision

    from adapt.models.resnet import ResNetFeatures, cached_weights_path

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(InputError, match=r"resnet18 weights IMAGENET1K_V1 are not in the local torch cache.*"
                       r"resnet18-f37072fd\.pth.*download=True"):  # fmt: skip
        ResNetFeatures("resnet18", "IMAGENET1K_V1")
    path = cached_weights_path("resnet18", "IMAGENET1K_V1")
    assert path == tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    path.parent.mkdir(parents=True)
    torch.manual_seed(5)
    reference = torchvision.models.resnet18()
    torch.save(reference.state_dict(), path)
    model = ResNetFeatures("resnet18", "IMAGENET1K_V1")
    assert torch.equal(model.net.conv1.weight, reference.conv1.weight) and model.pretrained
    with pytest.raises(ValueError, match="unknown resnet18 weights 'IMAGENET9K'"):
        ResNetFeatures("resnet18", "IMAGENET9K")


def test_target_only_and_finetune_are_deterministic(toy, source_model):
    def logits(make):
        model = make()
        model.fit(target_labeled=toy["labeled"], steps=10, seed=4, **FAST)
        return model.predict_logits(toy["xt"])

    def target_only():
        torch.manual_seed(0)
        return TargetOnly(default_backbone(), 3)

    assert torch.equal(logits(target_only), logits(target_only))
    finetune = lambda: FineTune.from_source(source_model)  # noqa: E731
    assert torch.equal(logits(finetune), logits(finetune))
