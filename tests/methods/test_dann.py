"""DANN: the gradient-reversal schedule, the domain loss and the default discriminator."""

import math

import numpy as np
import pytest
import torch
from helpers import warm_start
from torch import nn

from adapt import methods
from adapt.batch import Batch
from adapt.losses import domain_adversarial_loss


def ganin_domain_loss(d_prob_s: np.ndarray, d_prob_t: np.ndarray) -> float:
    """The domain term of Ganin et al., JMLR 2016, Eq. 18: a mean over each domain, summed."""
    return float(-np.log(d_prob_s).mean() - np.log(1 - d_prob_t).mean())


def test_dann_paper_preset_ramps_with_progress():
    model = methods.create("dann", nn.Linear(4, 4), num_classes=2, preset="paper")
    for p in (0.0, 0.1, 0.5, 1.0):
        assert model.grl_coefficient(p, step=7) == pytest.approx(2 / (1 + math.exp(-10 * p)) - 1)


def test_the_scheduled_coefficient_is_the_one_that_scales_the_reversed_gradient():
    torch.manual_seed(0)
    model = methods.create("dann", nn.Linear(4, 3), num_classes=2, preset="tllib", discriminator_hidden=(5,),
                           discriminator_batch_norm=False)  # fmt: skip
    xs, xt, ys = torch.randn(8, 4), torch.randn(8, 4), torch.randint(0, 2, (8,))
    model.build(xs)
    step = 2500
    model.zero_grad()
    model.loss(Batch(xs, ys, xt, step=step), 0.0)["domain"].backward()
    reversed_grad = model.backbone.weight.grad.clone()
    model.zero_grad()
    features = model.embed(torch.cat([xs, xt]))
    logits = model.discriminator(features)
    domain_adversarial_loss(logits[:8], logits[8:]).backward()
    plain_grad = model.backbone.weight.grad.clone()
    torch.testing.assert_close(reversed_grad, -warm_start(step, 1.0, 1000) * plain_grad)


def test_dann_paper_preset_sums_the_domain_losses_as_eq_18_and_tllib_averages_them():
    """TLlib's ``DomainAdversarialLoss.forward`` takes half the sum of the two domains' mean BCE
    (thuml/Transfer-Learning-Library at commit c4aa59e, ``tllib/alignment/dann.py`` lines 85-87)."""
    torch.manual_seed(0)
    xs, xt, ys = torch.randn(10, 4), torch.randn(10, 4) + 1, torch.randint(0, 2, (10,))
    values = {}
    for preset in ("paper", "tllib"):
        torch.manual_seed(1)
        model = methods.create("dann", nn.Linear(4, 3), num_classes=2, preset=preset, discriminator_hidden=(5,),
                               discriminator_batch_norm=False)  # fmt: skip
        model.build(xs)
        term = float(model.loss(Batch(xs, ys, xt), 0.5)["domain"].detach())
        with torch.no_grad():
            probs = torch.sigmoid(model.discriminator(model.embed(torch.cat([xs, xt])))).double().numpy()
        values[preset] = (term, ganin_domain_loss(probs[:10], probs[10:]))
    assert values["paper"][0] == pytest.approx(values["paper"][1], rel=1e-5)
    assert values["tllib"][0] == pytest.approx(0.5 * values["tllib"][1], rel=1e-5)


def test_unequal_batches_weigh_each_domain_equally():
    s, t = torch.tensor([2.0, -1.0]), torch.tensor([0.5])
    expected = 0.5 * (-torch.log(torch.sigmoid(s)).mean() - torch.log(1 - torch.sigmoid(t)).mean())
    torch.testing.assert_close(domain_adversarial_loss(s, t), expected)
    torch.testing.assert_close(domain_adversarial_loss(s, t, reduction="sum"), 2 * expected)


def test_dann_default_discriminator_is_the_cdan_authors_discriminator():
    """DANN's docstring: its default discriminator is that of the CDAN authors' code (the official preset)."""
    default = methods.create("dann", nn.Linear(4, 4), num_classes=2)
    official = methods.create("cdan", nn.Linear(4, 4), num_classes=2, preset="official")
    for model in (default, official):
        model.build(torch.randn(2, 4))

    def layers(model):  # the input width differs (CDAN sees features x predictions)
        return [(type(m).__name__, getattr(m, "out_features", None), getattr(m, "p", None))
                for m in model.discriminator.net]  # fmt: skip

    assert layers(default) == layers(official)
    assert [p for _, _, p in layers(default) if p is not None] == [0.5, 0.5]
    # CDAN's own default keeps the BatchNorm discriminator sized to the features
    cdan = methods.create("cdan", nn.Linear(4, 4), num_classes=2)
    assert cdan.discriminator_batch_norm and cdan.discriminator_hidden is None


def test_the_domain_loss_weighs_each_source_example_by_its_class_importance():
    """IWDAN (Combes et al., NeurIPS 2020): source example i enters the domain loss with weight w[y_i]."""
    torch.manual_seed(0)
    model = methods.create("dann", nn.Linear(4, 3), num_classes=3, discriminator_hidden=(5,), discriminator_dropout=0.0)
    xs, xt, ys = torch.randn(9, 4), torch.randn(7, 4), torch.arange(3).repeat(3)
    model.build(xs)
    model.importance.weights.copy_(torch.tensor([2.0, 0.5, 0.5]))
    term = model.loss(Batch(xs, ys, xt, step=3), 0.5)["domain"]
    with torch.no_grad():
        logits = model.discriminator(model.embed(torch.cat([xs, xt]))).reshape(-1)
    w = torch.tensor([2.0, 0.5, 0.5])[ys]
    bce_s = torch.nn.functional.softplus(-logits[:9])  # -log sigmoid
    bce_t = torch.nn.functional.softplus(logits[9:])  # -log (1 - sigmoid)
    expected = 0.5 * ((w * bce_s).sum() / w.sum() + bce_t.mean())
    torch.testing.assert_close(term.detach(), expected)
    plain = methods.create("dann", nn.Linear(4, 3), num_classes=3, importance_weighting=False)
    plain.build(xs)
    assert plain.importance is None and model.get_params()["importance_weighting"] is True


def test_importance_weights_estimate_the_target_class_proportions():
    """A pure label shift: the target holds 70/20/10 % of three separable classes, the source a third each;
    after training, the weights estimate p_T / p_S = (2.1, 0.6, 0.3)."""
    rng = np.random.default_rng(0)
    means = np.array([[4.0, 0.0], [-2.0, 3.5], [-2.0, -3.5]], dtype=np.float32)
    ys = np.repeat(np.arange(3), 200)
    yt = np.repeat(np.arange(3), [420, 120, 60])
    xs = (means[ys] + rng.normal(size=(600, 2))).astype(np.float32)
    xt = (means[yt] + rng.normal(size=(600, 2))).astype(np.float32)
    torch.manual_seed(0)
    model = methods.create("dann", nn.Sequential(nn.Linear(2, 16), nn.ReLU()), num_classes=3,
                           discriminator_hidden=(32,), importance_update_every=50)  # fmt: skip
    model.fit((xs, ys), xt, steps=400, seed=0, verbose=False)
    torch.testing.assert_close(model.importance.weights, torch.tensor([2.1, 0.6, 0.3]), atol=0.12, rtol=0.0)
    assert model.get_params()["importance_weighting"]
