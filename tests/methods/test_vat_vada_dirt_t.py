"""VAT, VADA and DIRT-T: the virtual adversarial loss, VADA's terms and DIRT-T's teacher."""

import math

import pytest
import torch
from helpers import _built
from torch import nn

from adapt import losses, methods
from adapt.testing import default_backbone, toy_problem


def test_vat_matches_pytorch_adapt():
    pa_layers = pytest.importorskip("pytorch_adapt.layers")
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    x = torch.randn(10, 6)
    logits = net(x)
    torch.manual_seed(5)
    ours = losses.virtual_adversarial_loss(net, x, logits, epsilon=2.0, xi=1e-6)
    torch.manual_seed(5)
    theirs = pa_layers.VATLoss(epsilon=2.0, xi=1e-6)(x, logits, net)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)
    assert ours.item() > 0


def test_vat_under_frozen_statistics_leaves_batch_norm_alone_and_compares_like_with_like():
    from adapt.models import frozen_running_statistics

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    x = torch.randn(8, 4)
    means = net[1].running_mean.clone()
    with frozen_running_statistics(net):
        value = losses.virtual_adversarial_loss(net, x, epsilon=1e-4)
    assert torch.equal(net[1].running_mean, means) and net[1].momentum == 0.1
    # a tiny perturbation of the same batch barely moves the predictions: clean logits come from the
    # same batch statistics (BatchNorm in eval mode for one pass only would show the train/eval gap)
    assert 0 <= value.item() < 1e-6


def test_vada_terms_and_defaults():
    model, batch = _built("vada", discriminator_hidden=(8,))
    terms = model.loss(batch, 0.5)
    assert set(terms) == {"classification", "domain", "source_vat", "target_entropy", "target_vat"}
    hp = methods.hyperparameters("vada")
    assert (hp["trade_off"], hp["source_vat"], hp["target_weight"]) == (0.01, 1.0, 0.01)


def test_vat_default_probe_survives_float32_where_the_papers_does_not():
    """With 3072 inputs in [0, 1], a probe of norm 1e-6 (the VAT paper's xi) vanishes when added in float32:
    most inputs do not change at all. The default xi = 1e-3 changes them all."""
    import inspect

    default_xi = inspect.signature(losses.virtual_adversarial_loss).parameters["xi"].default
    torch.manual_seed(0)
    x = torch.rand(4, 3, 32, 32)
    direction = torch.randn_like(x)
    direction = direction / direction.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    assert ((x + 1e-6 * direction) == x).float().mean() > 0.5
    assert ((x + default_xi * direction) == x).float().mean() < 0.01


def test_vat_with_dropout_disabled_measures_the_perturbation_not_the_dropout_masks():
    from adapt.models import dropout_disabled

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 3))
    x = torch.randn(16, 6)
    noisy = losses.virtual_adversarial_loss(net, x, epsilon=1e-6).item()
    with dropout_disabled(net):
        quiet = losses.virtual_adversarial_loss(net, x, epsilon=1e-6).item()
    assert net[2].training  # put back
    assert quiet < 1e-5 and noisy > 1e-3  # float32 round-off against different dropout masks


def test_prediction_kl_is_the_closed_form_and_vanishes_at_the_teacher():
    teacher = torch.log(torch.tensor([[0.5, 0.5], [0.9, 0.1]]))
    student = torch.log(torch.tensor([[0.25, 0.75], [0.5, 0.5]])).requires_grad_(True)
    expected = (0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75) + 0.9 * math.log(0.9 / 0.5)
                + 0.1 * math.log(0.1 / 0.5)) / 2  # fmt: skip
    value = losses.prediction_kl(teacher, student)
    assert float(value.detach()) == pytest.approx(expected, rel=1e-5)
    value.backward()  # d/dz KL(p || softmax(z)) = (softmax(z) - p) / B
    torch.testing.assert_close(student.grad, (student.softmax(1) - teacher.softmax(1)).detach() / 2)
    assert float(losses.prediction_kl(teacher, teacher)) == pytest.approx(0.0, abs=1e-7)


class Snapshots:
    """Every step: the discriminator's and the teacher's weights (it draws no random numbers)."""

    every = 1

    def __init__(self) -> None:
        self.discriminator, self.teacher = [], []

    def __call__(self, step, model):
        self.discriminator.append(torch.cat([p.detach().flatten().clone() for p in model.discriminator.parameters()]))
        self.teacher.append(torch.cat([p.detach().flatten().clone() for p in model.teacher.parameters()]))


def test_dirt_t_refines_on_the_target_with_a_teacher_renewed_on_schedule():
    data = toy_problem()
    torch.manual_seed(0)
    model = methods.create("dirt_t", default_backbone(), 3, vada_fraction=0.4, teacher_every=4,
                           discriminator_hidden=(16,))  # fmt: skip
    snapshots = Snapshots()
    history = model.fit((data["xs"], data["ys"]), data["xt"], steps=20, batch_size=8, seed=0, verbose=False,
                        log_every=1, callbacks=[snapshots])  # fmt: skip
    # steps 0-7 are VADA (progress < 0.4), 8-19 refinement; snapshot i is taken after step i
    assert history["domain"].iloc[:8].notna().all() and history["domain"].iloc[8:].isna().all()
    assert history["dirt_t"].iloc[:8].isna().all() and history["dirt_t"].iloc[8:].notna().all()
    assert int(model.refinement_start) == 8
    # the discriminator stops at the end of VADA
    assert all(torch.equal(snapshots.discriminator[7], d) for d in snapshots.discriminator[8:])
    assert not torch.equal(snapshots.discriminator[6], snapshots.discriminator[7])
    # the teacher is renewed at steps 8, 12 and 16 (before that step's update) and nowhere else
    renewed = [i for i in range(1, 20) if not torch.equal(snapshots.teacher[i - 1], snapshots.teacher[i])]
    assert renewed == [8, 12, 16]
