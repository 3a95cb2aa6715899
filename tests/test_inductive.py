"""A few labeled target examples: the engine's third stream, MME, the TargetOnly/FineTune baselines,
k-shot and published SSDA splits, and pretrained weights from the local torch cache."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from adapt import DANN, MME, FineTune, InputError, SourceOnly, TargetOnly
from adapt.data import few_shot_split, published_ssda_split, task
from adapt.data.download import mark_complete
from adapt.data.fewshot import _image_paths
from adapt.losses import minimax_entropy_loss
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
class _GradReverse(torch.autograd.Function):
    """``GradReverse`` (VisionLearningGroup/SSDA_MME at commit ee04ddd, ``model/basenet.py`` lines 8-20, the one
    ``Predictor_deep`` calls; ``utils/loss.py`` lines 7-19 is the same code): identity forward, gradient times
    -lambd, in the autograd API of today's PyTorch (theirs is the legacy non-static form, which no longer runs)."""

    @staticmethod
    def forward(ctx, x, lambd):
        ctx.lambd = lambd
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output * -ctx.lambd, None


def _authors_predictor(weight: torch.Tensor, temperature: float):
    """Transcription of ``Predictor.forward`` (VisionLearningGroup/SSDA_MME at commit ee04ddd, ``model/basenet.py``
    lines 83-88; ``fc`` has no bias, line 79): reverse (their ``grad_reverse``, :class:`_GradReverse`),
    normalize, fc / temp."""

    def forward(x, reverse=False, eta=0.1):
        if reverse:
            x = _GradReverse.apply(x, eta)
        x = nn.functional.normalize(x)
        return nn.functional.linear(x, weight) / temperature

    return forward


def _authors_adentropy(F1, feat, lamda, eta=1.0):
    """Transcription of ``adentropy`` (VisionLearningGroup/SSDA_MME at commit ee04ddd, ``utils/loss.py`` lines
    36-41); their ``F.softmax(out_t1)`` takes no ``dim``, which for a 2-D input is dim 1."""
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
    ours = 0.1 * minimax_entropy_loss(classifier(ours_f, reverse=True))  # as MME._entropy_term
    theirs = _authors_adentropy(_authors_predictor(theirs_w, 0.05), theirs_f, 0.1)
    ours.backward()
    theirs.backward()
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-6)
    torch.testing.assert_close(ours_f.grad, theirs_f.grad)
    torch.testing.assert_close(classifier.fc.weight.grad, theirs_w.grad)


@pytest.fixture(scope="module")
def swapped():
    """A target whose classes sit where *other* source classes are: the source alone misleads (the nearest
    source centroid, computed below, scores near 0), so whatever beats it has learned from the 9 labeled
    target examples. They are kept out of the scored examples."""
    g = torch.Generator().manual_seed(7)
    centers = torch.randn(3, 6, generator=g) * 3
    ys, yt = torch.arange(90) % 3, torch.arange(90) % 3
    xs = centers[ys] + torch.randn(90, 6, generator=g)
    xt = centers[(yt + 1) % 3] + torch.randn(90, 6, generator=g)
    return {"xs": xs, "ys": ys, "xt": xt, "labeled": (xt[:9], yt[:9]), "scored": (xt[9:], yt[9:])}


def nearest_source_centroid(xs, ys, x) -> torch.Tensor:
    """The trivial baseline: each input gets the class of the nearest source class mean (no training)."""
    centroids = torch.stack([xs[ys == c].mean(0) for c in range(int(ys.max()) + 1)])
    return torch.cdist(x, centroids).argmin(1)


def test_the_swapped_target_misleads_the_source(swapped):
    x, y = swapped["scored"]
    assert float((nearest_source_centroid(swapped["xs"], swapped["ys"], x) == y).float().mean()) < 0.1


def test_mme_takes_two_optimizer_steps_per_batch(toy, monkeypatch):
    """The authors' ``main.py`` steps once on the labeled cross-entropy, then once on the minimax entropy
    (VisionLearningGroup/SSDA_MME at commit ee04ddd, ``main.py`` lines 183-204); without ``MME.update`` the
    engine would take one."""
    from adapt.train.engine import Stepper

    calls = []
    original = Stepper.step
    monkeypatch.setattr(Stepper, "step", lambda self, loss, **kw: calls.append(loss) or original(self, loss, **kw))
    torch.manual_seed(0)
    MME(default_backbone(), 3).fit((toy["xs"], toy["ys"]), toy["xt"], target_labeled=toy["labeled"], steps=3, **FAST)
    assert len(calls) == 6
    assert [set(c) if isinstance(c, dict) else "entropy" for c in calls[:2]] == [
        {"classification", "target_classification"}, "entropy"]  # fmt: skip


def test_mme_gains_from_a_few_target_labels(swapped):
    scores = {}
    for name, labeled in (("unsupervised", None), ("3-shot", swapped["labeled"])):
        torch.manual_seed(0)
        model = MME(default_backbone(), 3)
        model.fit((swapped["xs"], swapped["ys"]), swapped["xt"], target_labeled=labeled, steps=300, lr=0.01, **FAST)
        scores[name] = model.score(*swapped["scored"])
    x, y = swapped["scored"]
    centroid = float((nearest_source_centroid(swapped["xs"], swapped["ys"], x) == y).float().mean())
    assert scores["3-shot"] > centroid + 0.5 and scores["3-shot"] > scores["unsupervised"] + 0.5, scores


# ----------------------------------------------------------------------------- MME as the authors run it
class _PredictorDeep(nn.Module):
    """Transcription of ``Predictor_deep`` (VisionLearningGroup/SSDA_MME at commit ee04ddd,
    ``model/basenet.py`` lines 91-105): fc1, the reversal after it, normalize, fc2 / temp."""

    def __init__(self, num_class, inc, temp=0.05):
        super().__init__()
        self.fc1 = nn.Linear(inc, 512)
        self.fc2 = nn.Linear(512, num_class, bias=False)
        self.temp = temp

    def forward(self, x, reverse=False, eta=0.1):
        x = self.fc1(x)
        if reverse:
            x = _GradReverse.apply(x, eta)
        x = nn.functional.normalize(x)
        return self.fc2(x) / self.temp


def official_mme_steps(G, F1, batches, lr=0.01, multi=0.1, lamda=0.1):
    """Transcription of ``main.py``'s ``train()`` for ResNets (VisionLearningGroup/SSDA_MME at commit ee04ddd,
    ``main.py`` lines 87-95 and 136-206; the defaults lr 0.01, multi 0.1, lamda 0.1 at lines 24-31) with
    ``utils/lr_schedule.py``'s ``inv_lr_scheduler`` (lines 4-12) and ``utils/loss.py``'s ``adentropy`` (lines
    36-41): G's parameters at ``multi`` x lr (the 10x of lines 93-95 is for parameters named 'classifier',
    which a ResNet lacks), F1's at lr, SGD with Nesterov momentum 0.9 and weight decay 5e-4 (lines 139-142).
    ``batches``: (source x, source y, labeled target x, labeled target y, unlabeled target x) per step."""
    params = [{"params": [value], "lr": multi, "weight_decay": 0.0005} for value in G.parameters()]
    optimizer_g = torch.optim.SGD(params, momentum=0.9, weight_decay=0.0005, nesterov=True)
    optimizer_f = torch.optim.SGD(list(F1.parameters()), lr=1.0, momentum=0.9, weight_decay=0.0005, nesterov=True)
    param_lr_g = [group["lr"] for group in optimizer_g.param_groups]
    param_lr_f = [group["lr"] for group in optimizer_f.param_groups]
    criterion = nn.CrossEntropyLoss()

    def inv_lr_scheduler(param_lr, optimizer, iter_num, gamma=0.0001, power=0.75, init_lr=0.001):
        rate = init_lr * (1 + gamma * iter_num) ** (-power)
        for i, group in enumerate(optimizer.param_groups):
            group["lr"] = rate * param_lr[i]
        return optimizer

    def adentropy(F1, feat, lamda, eta=1.0):
        out_t1 = nn.functional.softmax(F1(feat, reverse=True, eta=eta), dim=1)
        return lamda * torch.mean(torch.sum(out_t1 * (torch.log(out_t1 + 1e-5)), 1))

    for step, (xs, ys, xl, yl, xu) in enumerate(batches):
        optimizer_g = inv_lr_scheduler(param_lr_g, optimizer_g, step, init_lr=lr)
        optimizer_f = inv_lr_scheduler(param_lr_f, optimizer_f, step, init_lr=lr)
        optimizer_g.zero_grad()
        optimizer_f.zero_grad()
        loss = criterion(F1(G(torch.cat((xs, xl), 0))), torch.cat((ys, yl), 0))
        loss.backward(retain_graph=True)
        optimizer_g.step()
        optimizer_f.step()
        optimizer_g.zero_grad()
        optimizer_f.zero_grad()
        loss_t = adentropy(F1, G(xu), lamda)
        loss_t.backward()
        optimizer_f.step()
        optimizer_g.step()


def test_mme_official_preset_trains_as_the_authors_main_py(swapped, monkeypatch):
    """Three steps of ``create("mme", preset="official")`` end with the weights of the authors' loop run on
    the same batches from the same initial weights: Predictor_deep, one cross-entropy over source and
    labeled target together, G at 0.1x, Nesterov, their inverse schedule, a 2x unlabeled batch (SSDA_MME at
    ee04ddd: ``main.py`` lines 97-99 and 183-188, ``utils/return_dataset.py`` lines 95-98)."""
    from adapt.methods import create

    seen, initial = [], {}
    original = MME.update

    def spy(self, batch, progress, stepper):
        if not initial:  # the weights training starts from (fit builds fresh heads)
            initial["G"], initial["F1"] = copy.deepcopy(self.backbone), copy.deepcopy(self.classifier)
        seen.append((batch.source_x, batch.source_y, batch.labeled_target_x, batch.labeled_target_y, batch.target_x))
        return original(self, batch, progress, stepper)

    monkeypatch.setattr(MME, "update", spy)
    torch.manual_seed(0)
    ours = create("mme", default_backbone(), 3, preset="official")
    ours.fit((swapped["xs"], swapped["ys"]), swapped["xt"], target_labeled=swapped["labeled"], steps=3,
             batch_size=8, seed=0, device="cpu", verbose=False)  # fmt: skip
    assert [b[4].shape[0] for b in seen] == [16] * 3  # the unlabeled target batch is twice the others
    G, F1 = initial["G"], _PredictorDeep(3, 8)
    F1.fc1.load_state_dict(initial["F1"].hidden.state_dict())
    F1.fc2.load_state_dict(initial["F1"].fc.state_dict())
    official_mme_steps(G, F1, seen)
    for name, value in G.state_dict().items():
        torch.testing.assert_close(ours.backbone.state_dict()[name], value, rtol=1e-5, atol=1e-6, msg=name)
    torch.testing.assert_close(ours.classifier.hidden.weight, F1.fc1.weight, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours.classifier.fc.weight, F1.fc2.weight, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- TargetOnly and FineTune
def test_target_only_learns_from_the_labeled_target_alone(toy, swapped):
    torch.manual_seed(0)
    model = TargetOnly(default_backbone(), 3)
    history = model.fit(target_labeled=toy["labeled"], steps=60, lr=0.05, **FAST)
    assert list(history.columns) == ["step", "progress", "lr", "seconds", "target_classification", "total"]
    torch.manual_seed(0)
    model = TargetOnly(default_backbone(), 3)
    model.fit(target_labeled=swapped["labeled"], steps=150, lr=0.05, **FAST)
    x, y = swapped["scored"]
    centroid = float((nearest_source_centroid(swapped["xs"], swapped["ys"], x) == y).float().mean())
    assert model.score(x, y) > max(centroid, 1 / 3) + 0.4  # beats the source's centroids and chance
    with pytest.raises(InputError, match="TargetOnly trains on labeled target examples"):
        TargetOnly(default_backbone(), 3).fit(target=toy["xt"], steps=1, **FAST)
    with pytest.raises(InputError, match="TargetOnly does not use source data"):
        TargetOnly(default_backbone(), 3).fit((toy["xs"], toy["ys"]), target_labeled=toy["labeled"], steps=1, **FAST)


def test_finetune_learns_what_the_source_model_got_wrong(swapped):
    torch.manual_seed(0)
    source = SourceOnly(default_backbone(), 3)
    source.fit((swapped["xs"], swapped["ys"]), swapped["xt"], steps=100, lr=0.05, **FAST)
    finetuned = FineTune.from_source(source)
    finetuned.fit(target_labeled=swapped["labeled"], steps=150, lr=0.05, **FAST)
    assert finetuned.score(*swapped["scored"]) > source.score(*swapped["scored"]) + 0.4


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
