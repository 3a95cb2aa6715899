"""MME: the minimax entropy term and the official preset against the authors' code."""

import copy

import pytest
import torch
from helpers import FAST, nearest_source_centroid
from torch import nn

from adapt import MME
from adapt.losses import minimax_entropy_loss
from adapt.models.heads import CosineClassifier
from adapt.testing import default_backbone


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
